package dnsmasq

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"hybridlab/topology"
)

// Binary is the dnsmasq executable (Debian package dnsmasq-base).
var Binary = "dnsmasq"

// Timeouts of the process steps.
const (
	readyTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
	pollInterval = 50 * time.Millisecond
)

// Result says what Ensure did.
type Result struct {
	Config Config
	PID    int
	// Started is true when Ensure (re)started dnsmasq, false when the
	// running process already had this configuration.
	Started bool
}

// Ensure writes the configuration for p under stateDir and makes sure one
// dnsmasq runs with it, in the caller's netns (`dnsmasq
// --conf-file=STATE/dnsmasq.conf`). Idempotent: a dnsmasq of this state
// directory that runs with the same configuration hash is left alone; one
// with another configuration, or that no longer answers, is stopped and
// started again. It returns when the pid file names a live dnsmasq and
// every segment's gateway answers DNS on UDP 53.
// It leaves the process running and the files in stateDir.
func Ensure(ctx context.Context, p *topology.Plan, stateDir string) (Result, error) {
	cfg, err := Render(p, stateDir)
	if err != nil {
		return Result{}, err
	}
	res := Result{Config: cfg}
	if pid, ok := running(cfg); ok && readHash(stateDir) == cfg.Hash && answers(ctx, cfg) {
		res.PID = pid
		return res, nil
	}
	if err := Stop(stateDir); err != nil {
		return res, err
	}
	if err := writeFiles(cfg); err != nil {
		return res, err
	}
	if res.PID, err = start(ctx, cfg); err != nil {
		return res, err
	}
	res.Started = true
	return res, nil
}

func writeFiles(cfg Config) error {
	if err := os.MkdirAll(cfg.HostsDir, 0o755); err != nil {
		return fmt.Errorf("create hosts dir %q: %w", cfg.HostsDir, err)
	}
	if err := checkTraversable(cfg.HostsDir); err != nil {
		return err
	}
	if err := writeAtomic(cfg.Path, []byte(cfg.Text)); err != nil {
		return fmt.Errorf("write dnsmasq config %q: %w", cfg.Path, err)
	}
	hash := filepath.Join(filepath.Dir(cfg.Path), HashFile)
	if err := writeAtomic(hash, []byte(cfg.Hash+"\n")); err != nil {
		return fmt.Errorf("write config hash %q: %w", hash, err)
	}
	return nil
}

// checkTraversable fails when a directory on the way to dir is closed to
// other users: dnsmasq drops root for its own user before it reads the
// hosts directory, and would then silently serve no added records.
func checkTraversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("check hosts dir %q: %w", dir, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%w: dnsmasq's user cannot enter %q; chmod o+x %s",
				ErrInvalid, d, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// start runs dnsmasq, which forks into the background once its sockets
// are bound (its exit status reports a failed start), then waits until it
// answers.
func start(ctx context.Context, cfg Config) (int, error) {
	os.Remove(cfg.PIDFile)
	cmd := exec.CommandContext(ctx, Binary, "--conf-file="+cfg.Path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("start dnsmasq for lab %q: %w: %s", cfg.Lab, err,
			strings.TrimSpace(stderr.String()))
	}
	return waitReady(ctx, cfg)
}

func waitReady(ctx context.Context, cfg Config) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var lastErr error
	for {
		pid, ok := running(cfg)
		if ok {
			if lastErr = answersAll(ctx, cfg); lastErr == nil {
				return pid, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for dnsmasq of lab %q on %s: %w (last: %v)",
				cfg.Lab, gatewayList(cfg), ctx.Err(), lastErr)
		case <-time.After(pollInterval):
		}
	}
}

// answers reports whether dnsmasq answers on every gateway; a dnsmasq
// whose bridge was deleted and made again keeps running but no longer
// does there.
func answers(ctx context.Context, cfg Config) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return answersAll(ctx, cfg) == nil
}

// answersAll asks each gateway for gw.DOMAIN and returns the first error.
func answersAll(ctx context.Context, cfg Config) error {
	for _, gw := range listenAddrs(cfg) {
		if _, err := Query(ctx, gw, "gw."+cfg.Domain, dnsmessage.TypeA); err != nil {
			return err
		}
	}
	return nil
}

// listenAddrs are the gateways of cfg; the main one for a Config built by
// hand without Gateways.
func listenAddrs(cfg Config) []netip.Addr {
	if len(cfg.Gateways) == 0 {
		return []netip.Addr{cfg.Listen}
	}
	return cfg.Gateways
}

func gatewayList(cfg Config) string {
	var s []string
	for _, gw := range listenAddrs(cfg) {
		s = append(s, gw.String()+":53")
	}
	return strings.Join(s, ", ")
}

// Stop ends the dnsmasq of stateDir (SIGTERM, then SIGKILL after 5 s) and
// removes its pid file. Only a process whose command line names this
// state directory's config is signalled. Not running is success.
func Stop(stateDir string) error {
	cfg := Config{Path: filepath.Join(stateDir, ConfFile), PIDFile: filepath.Join(stateDir, PIDFile)}
	pid, ok := running(cfg)
	if !ok {
		os.Remove(cfg.PIDFile)
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop dnsmasq pid %d: %w", pid, err)
	}
	if !waitGone(pid, stopTimeout) {
		syscall.Kill(pid, syscall.SIGKILL)
		if !waitGone(pid, stopTimeout) {
			return fmt.Errorf("stop dnsmasq pid %d: still running after SIGKILL", pid)
		}
	}
	os.Remove(cfg.PIDFile)
	return nil
}

// waitGone waits until process pid has exited. Its command line is not
// enough: an exiting process loses it (exit_mm) before its sockets close
// (exit_files), and a new dnsmasq started in that window cannot bind port
// 53. A zombie has closed everything.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if exited(pid) {
			return true
		}
		time.Sleep(pollInterval)
	}
	return false
}

// exited reports whether pid is gone or a zombie (`ps -o stat` Z or X).
func exited(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name, which may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return true
	}
	state := data[i+2]
	return state == 'Z' || state == 'X'
}

// running returns the pid in cfg's pid file when that process is a
// dnsmasq started with cfg's config file.
func running(cfg Config) (int, bool) {
	data, err := os.ReadFile(cfg.PIDFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, isDnsmasq(pid, cfg.Path)
}

// isDnsmasq checks /proc/PID/cmdline; a zombie has an empty one and counts
// as gone.
func isDnsmasq(pid int, conf string) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != "dnsmasq" {
		return false
	}
	for _, a := range args[1:] {
		if a == "--conf-file="+conf {
			return true
		}
	}
	return false
}

func readHash(stateDir string) string {
	data, _ := os.ReadFile(filepath.Join(stateDir, HashFile))
	return strings.TrimSpace(string(data))
}

// State is the state of a lab's dnsmasq.
type State struct {
	Running bool
	PID     int
	// ConfigHash is the hash of the configuration it was started with.
	ConfigHash string
	Leases     []Lease
}

// Status reports whether the dnsmasq of stateDir runs and lists its
// leases. It changes nothing.
func Status(stateDir string) (State, error) {
	cfg := Config{Path: filepath.Join(stateDir, ConfFile), PIDFile: filepath.Join(stateDir, PIDFile)}
	var st State
	st.PID, st.Running = running(cfg)
	if !st.Running {
		st.PID = 0
	}
	st.ConfigHash = readHash(stateDir)
	leases, err := Leases(stateDir)
	if err != nil {
		return st, err
	}
	st.Leases = leases
	return st, nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
