package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"

	"hybridlab/provision/dnssync"
	"hybridlab/topology"
)

// The DNS sync process: `setup dns-sync` follows Docker's events and keeps
// records for containers started after `up` (package dnssync). It must
// outlive `setup up`, and `go run` deletes its binary when it exits, so up
// copies the running binary into the state directory and starts that copy.
const (
	syncBinary = "hybridlab-dnssync"
	syncPID    = "dnssync.pid"
	syncPlan   = "plan.json"
	syncLog    = "dnssync.log"
)

// ensureDNSSync starts the lab's DNS sync process unless one runs for the
// current plan already. It reports whether it started one.
func ensureDNSSync(p *topology.Plan) (bool, error) {
	dir := StateDir(p.Lab)
	// Only what the syncer reads decides a restart: a policy change, say,
	// must not restart it.
	planJSON, err := json.Marshal(syncView(p))
	if err != nil {
		return false, err
	}
	old, _ := os.ReadFile(filepath.Join(dir, syncPlan))
	pid, running := syncRunning(dir)
	if running && bytes.Equal(old, planJSON) {
		return false, nil
	}
	if running {
		stopPID(pid)
	}
	if err := os.WriteFile(filepath.Join(dir, syncPlan), planJSON, 0o644); err != nil {
		return false, fmt.Errorf("write plan for dns sync: %w", err)
	}
	bin, err := copySelf(filepath.Join(dir, syncBinary))
	if err != nil {
		return false, fmt.Errorf("install dns sync binary: %w", err)
	}
	return true, startSync(dir, bin)
}

// syncView is the part of the plan the DNS sync process depends on: the
// lab's name and domain, the nodes (planned names get no extra record) and
// every segment, whose Docker networks it follows.
func syncView(p *topology.Plan) *topology.Plan {
	return &topology.Plan{Lab: p.Lab, Domain: p.Domain, Subnet: p.Subnet, Gateway: p.Gateway,
		Docker: p.Docker, Nodes: p.Nodes, Segments: p.Segments}
}

func startSync(dir, bin string) error {
	logf, err := os.OpenFile(filepath.Join(dir, syncLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "dns-sync", "--plan", filepath.Join(dir, syncPlan))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dns sync: %w", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return os.WriteFile(filepath.Join(dir, syncPID), []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// syncRunning reads the pid file and checks that the process is this
// lab's sync process (a reused pid is not).
func syncRunning(dir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dir, syncPID))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(filepath.Join(dir, syncPlan))) {
		return 0, false
	}
	return pid, true
}

// stopDNSSync stops the lab's sync process; none running is success.
func stopDNSSync(lab string) (int, error) {
	pid, ok := syncRunning(StateDir(lab))
	if !ok {
		return 0, nil
	}
	if !stopPID(pid) {
		return pid, fmt.Errorf("dns sync (pid %d) did not stop", pid)
	}
	return pid, nil
}

func stopPID(pid int) bool {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		// A child of ours that exited stays a zombie until reaped.
		var ws syscall.WaitStatus
		if wpid, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); wpid == pid {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return false
}

// copySelf copies the running executable to dst unless dst has the same
// content already.
func copySelf(dst string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	src, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	if cur, err := os.ReadFile(dst); err == nil && bytes.Equal(cur, src) {
		return dst, nil
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, src, 0o755); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

// RunDNSSync is the body of `setup dns-sync`: it loads the plan up wrote
// and follows Docker until ctx ends.
func RunDNSSync(ctx context.Context, planPath string, log io.Writer) error {
	data, err := os.ReadFile(planPath)
	if err != nil {
		return err
	}
	var p topology.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("read plan %s: %w", planPath, err)
	}
	return runSyncer(ctx, &p, log)
}

// runSyncer keeps a Syncer running across dockerd restarts.
func runSyncer(ctx context.Context, p *topology.Plan, log io.Writer) error {
	for {
		err := syncOnce(ctx, p)
		if ctx.Err() != nil {
			return nil
		}
		fmt.Fprintf(log, "%s dns sync: %v; retrying\n", time.Now().Format(time.RFC3339), err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func syncOnce(ctx context.Context, p *topology.Plan) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	return dnssync.New(cli, p, StateDir(p.Lab)).Run(ctx)
}
