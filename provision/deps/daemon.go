package deps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// LogDir holds the logs of the daemons hybridlab starts.
const LogDir = "/var/log/hybridlab"

// How long a started daemon may take to become ready.
const (
	DockerdTimeout  = 60 * time.Second
	LibvirtdTimeout = 30 * time.Second
)

// Sockets the readiness checks use.
const (
	DockerSocket   = "/var/run/docker.sock"
	LibvirtSocket  = "/run/libvirt/libvirt-sock"
	VirtlogdSocket = "/run/libvirt/virtlogd-sock"
)

// ErrNotStarted: Stop was asked to stop a daemon hybridlab did not start.
var ErrNotStarted = errors.New("daemon not started by hybridlab")

// Daemon reports one daemon an Ensure function looked after. Keep it in
// the lab's state: Stop needs it to stop exactly what was started.
type Daemon struct {
	Name string `json:"name"`
	// Started is true when this call started the daemon; only then may
	// `down` stop it.
	Started bool `json:"started"`
	// PID of the started process; 0 when the daemon was already running.
	PID int `json:"pid,omitempty"`
	// StartTime is the process's start time in clock ticks after boot
	// (/proc/PID/stat field 22), so Stop can tell a reused PID.
	StartTime uint64 `json:"start_time,omitempty"`
	// Log is the file the started daemon writes to.
	Log string `json:"log,omitempty"`
	// Ready is how long the started daemon took to answer.
	Ready time.Duration `json:"ready,omitempty"`
}

func (d Daemon) String() string {
	if !d.Started {
		return d.Name + " already running"
	}
	return fmt.Sprintf("%s started (pid %d, ready in %s, log %s)",
		d.Name, d.PID, d.Ready.Round(time.Millisecond), d.Log)
}

// daemonSpec is how to start one daemon and tell when it is ready.
type daemonSpec struct {
	name string // as /proc/PID/comm shows it
	path string
	args []string
	env  []string
	// pidFile is the daemon's own pid file, used to notice one that is
	// still starting; empty for none.
	pidFile string
	logDir  string
	timeout time.Duration
	ready   func(ctx context.Context) error
}

// EnsureDockerd makes sure dockerd answers on /var/run/docker.sock
// (`curl --unix-socket /var/run/docker.sock http://d/_ping` gives OK). If
// it does not, it starts /usr/sbin/dockerd with its default socket, so the
// docker CLI works too, detached in its own session, logging to
// /var/log/hybridlab/dockerd.log, and waits up to DockerdTimeout.
func EnsureDockerd(ctx context.Context) (Daemon, error) {
	return ensure(ctx, daemonSpec{
		name: "dockerd", path: "/usr/sbin/dockerd", pidFile: "/var/run/docker.pid",
		logDir: LogDir, timeout: DockerdTimeout, ready: dockerPing(DockerSocket),
	})
}

// EnsureLibvirtd makes sure virtlogd and then libvirtd run, as
// `virtlogd -d && libvirtd -d` would, but in the foreground of their own
// sessions so their PIDs are known, logging to /var/log/hybridlab. It
// waits until virtlogd's socket accepts and libvirtd answers an RPC on
// /run/libvirt/libvirt-sock (like `virsh -c qemu:///system version`). It
// returns both daemons' reports, also those it got through before an
// error.
func EnsureLibvirtd(ctx context.Context) ([]Daemon, error) {
	specs := []daemonSpec{{
		name: "virtlogd", path: "/usr/sbin/virtlogd", pidFile: "/run/virtlogd.pid",
		logDir: LogDir, timeout: LibvirtdTimeout, ready: socketAccepts(VirtlogdSocket),
	}, {
		name: "libvirtd", path: "/usr/sbin/libvirtd", pidFile: "/run/libvirtd.pid",
		logDir: LogDir, timeout: LibvirtdTimeout, ready: libvirtAnswers(LibvirtSocket),
	}}
	var out []Daemon
	for _, s := range specs {
		d, err := ensure(ctx, s)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

func ensure(ctx context.Context, s daemonSpec) (Daemon, error) {
	d := Daemon{Name: s.name}
	if s.ready(ctx) == nil {
		return d, nil
	}
	if pid := runningPID(s.pidFile, s.name); pid > 0 {
		// Someone else started it and it is still coming up: starting a
		// second one would fail on its pid file lock.
		if err := waitReady(ctx, s, nil); err != nil {
			return d, fmt.Errorf("wait for %s (pid %d, not started by hybridlab): %w",
				s.name, pid, err)
		}
		return d, nil
	}
	return start(ctx, s)
}

var errExited = errors.New("exited")

// start runs the daemon detached: a new session (setsid), so it has its
// own process group, no controlling terminal, and outlives this process.
func start(ctx context.Context, s daemonSpec) (Daemon, error) {
	if _, err := os.Stat(s.path); err != nil {
		return Daemon{}, fmt.Errorf("start %s: %w", s.name, err)
	}
	logPath, logFile, err := openLog(s.logDir, s.name)
	if err != nil {
		return Daemon{}, fmt.Errorf("start %s: %w", s.name, err)
	}
	// Not CommandContext: cancelling ctx must not kill the daemon.
	cmd := exec.Command(s.path, s.args...)
	cmd.Env = append(daemonEnv(), s.env...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	t0 := time.Now()
	err = cmd.Start()
	logFile.Close()
	if err != nil {
		return Daemon{}, fmt.Errorf("start %s: %w", s.name, err)
	}
	// Reap the daemon if it dies while this process lives.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	d := Daemon{Name: s.name, Started: true, PID: cmd.Process.Pid, Log: logPath}
	d.StartTime, _ = startTime(d.PID)
	if err := waitReady(ctx, s, exited); err != nil {
		if !errors.Is(err, errExited) {
			// A daemon that never got ready is stopped: no state would
			// record it, so nothing else could.
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		return Daemon{}, fmt.Errorf("start %s (pid %d): %w; last lines of %s:\n%s",
			s.name, d.PID, err, logPath, tail(logPath, 10))
	}
	d.Ready = time.Since(t0)
	return d, nil
}

func openLog(dir, name string) (string, *os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("create log directory: %w", err)
	}
	path := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("open log: %w", err)
	}
	fmt.Fprintf(f, "=== %s started by hybridlab at %s\n", name,
		time.Now().UTC().Format(time.RFC3339))
	return path, f, nil
}

// daemonEnv is this process's environment with the sbin directories on
// PATH: dockerd runs iptables, containerd and runc from there.
func daemonEnv() []string {
	env := os.Environ()
	want := []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
	have := strings.Split(os.Getenv("PATH"), ":")
	for _, dir := range want {
		if !contains(have, dir) {
			have = append(have, dir)
		}
	}
	out := []string{"PATH=" + strings.Join(have, ":")}
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitReady polls s.ready until it succeeds, the daemon exits (exited
// fires), or s.timeout passes.
func waitReady(ctx context.Context, s daemonSpec, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		last := s.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("%w before it was ready: %v", errExited, err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", s.timeout, last)
		case <-tick.C:
		}
	}
}

// dockerPing is Docker's health check: GET /_ping answers "OK".
func dockerPing(socket string) func(context.Context) error {
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("ping %s: %w", socket, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "OK" {
			return fmt.Errorf("ping %s: %s %q", socket, resp.Status, body)
		}
		return nil
	}
}

// socketAccepts is ready once a unix socket accepts a connection.
func socketAccepts(socket string) func(context.Context) error {
	return func(ctx context.Context) error {
		conn, err := dialUnix(ctx, socket)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// libvirtAnswers is ready once libvirtd accepts a connection and answers
// an RPC for qemu:///system.
func libvirtAnswers(socket string) func(context.Context) error {
	return func(ctx context.Context) error {
		conn, err := dialUnix(ctx, socket)
		if err != nil {
			return err
		}
		// go-libvirt calls take no context; the deadline bounds them.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		l := libvirt.NewWithDialer(dialers.NewAlreadyConnected(conn))
		if err := l.Connect(); err != nil {
			conn.Close()
			return fmt.Errorf("connect to libvirtd on %s: %w", socket, err)
		}
		defer l.Disconnect()
		if _, err := l.ConnectGetLibVersion(); err != nil {
			return fmt.Errorf("ask libvirtd on %s for its version: %w", socket, err)
		}
		return nil
	}
}

func dialUnix(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", socket, err)
	}
	return conn, nil
}

// Stop stops a daemon that d says this lab started: SIGTERM to its PID,
// then wait until it is gone or ctx ends (`kill PID`). A daemon that was
// already running is left alone and ErrNotStarted returned. A daemon that
// is already gone, or whose PID now names another process, is success.
func Stop(ctx context.Context, d Daemon) error {
	if !d.Started || d.PID <= 0 {
		return fmt.Errorf("stop %s: %w; leaving it running", d.Name, ErrNotStarted)
	}
	if !sameProcess(d) {
		return nil
	}
	if err := syscall.Kill(d.PID, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop %s (pid %d): %w", d.Name, d.PID, err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for sameProcess(d) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop %s (pid %d): still running: %w", d.Name, d.PID, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// sameProcess reports whether d.PID is still d's live process: same name
// and, when recorded, same start time; a zombie counts as gone.
func sameProcess(d Daemon) bool {
	st, err := readStat(d.PID)
	if err != nil || st.state == "Z" || st.comm != comm(d.Name) {
		return false
	}
	return d.StartTime == 0 || st.start == d.StartTime
}

// runningPID returns the PID in pidFile when it names a live process
// called name, else 0.
func runningPID(pidFile, name string) int {
	if pidFile == "" {
		return 0
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !sameProcess(Daemon{Name: name, PID: pid}) {
		return 0
	}
	return pid
}

type procStat struct {
	comm  string
	state string
	start uint64
}

// readStat parses /proc/PID/stat: "PID (COMM) STATE PPID …", with the
// start time as field 22.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("parse process stat %q", s)
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("parse process stat: %d fields", len(fields))
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse process start time: %w", err)
	}
	return procStat{comm: s[open+1 : end], state: fields[0], start: start}, nil
}

func startTime(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.start, err
}

// comm is name as the kernel keeps it (at most 15 bytes).
func comm(name string) string {
	if len(name) > 15 {
		return name[:15]
	}
	return name
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
