package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"hybridlab/probes/remote"
)

// Node runs arbitrary commands on one end of a path: to completion (Exec) or in the
// background (Spawn). The fidelity check and the environment capture use it.
type Node interface {
	remote.Execer
	Spawn(ctx context.Context, argv ...string) (Proc, error)
	String() string
}

// Proc is a background command started by Node.Spawn.
type Proc interface {
	// Stop ends the command (SIGTERM, then SIGKILL after grace) and waits for it.
	Stop(grace time.Duration) error
}

// HostNode runs commands on this host, inside the named netns when Netns is set
// (`ip netns exec NETNS ARGV…`).
type HostNode struct{ Netns string }

func (n HostNode) String() string {
	if n.Netns == "" {
		return "host"
	}
	return fmt.Sprintf("netns %q", n.Netns)
}

func (n HostNode) argv(argv []string) []string {
	if n.Netns == "" {
		return argv
	}
	return append([]string{"ip", "netns", "exec", n.Netns}, argv...)
}

// Exec runs argv to completion and returns its stdout; a non-zero exit is a
// *remote.ExitError carrying stderr.
func (n HostNode) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("run on %s: empty command", n)
	}
	full := n.argv(argv)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return stdout.Bytes(), &remote.ExitError{Where: n.String(), Args: full,
			Code: ee.ExitCode(), Stderr: stderr.String()}
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("run %q on %s: %w", strings.Join(full, " "), n, err)
	}
	return stdout.Bytes(), nil
}

// Spawn starts argv in the background; it is killed when ctx ends or by Stop.
func (n HostNode) Spawn(ctx context.Context, argv ...string) (Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start on %s: empty command", n)
	}
	full := n.argv(argv)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	p := &hostProc{cmd: cmd, done: make(chan error, 1)}
	cmd.Stdout = &p.out
	cmd.Stderr = &p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q on %s: %w", strings.Join(full, " "), n, err)
	}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

type hostProc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // read only after done
	done chan error
}

func (p *hostProc) Stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("stop %q (pid %d): killed after %v", p.cmd.Path, p.cmd.Process.Pid,
			grace)
	}
}
