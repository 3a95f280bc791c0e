// Package remote runs the probe agent on lab nodes — in a Docker container, on a VM over SSH,
// in a network namespace or on the host — and parses its JSON results, so that suites use
// one API whatever the node kind. It is kept out of the agent's import graph.
package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// AgentPath is where lab images and VMs install the probe agent.
const AgentPath = "/usr/local/bin/probe"

// Runner runs the probe agent with args on one node and returns its stdout. A probe that ran
// and exited non-zero yields an *ExitError (stdout is still returned).
type Runner interface {
	Run(ctx context.Context, args ...string) ([]byte, error)
}

// Execer runs any command (argv[0] looked up on the node) and returns its stdout, with the
// same error contract as Runner. Every runner of this package is also an Execer.
type Execer interface {
	Exec(ctx context.Context, argv ...string) ([]byte, error)
}

// ExitError reports a command that ran on a node and exited non-zero.
type ExitError struct {
	Where  string // the node, e.g. `container "hybrid-web"`
	Args   []string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no stderr"
	}
	return fmt.Sprintf("run %q on %s: exit %d: %s", strings.Join(e.Args, " "), e.Where,
		e.Code, msg)
}

// Usage reports whether the probe rejected its arguments (exit code 2).
func (e *ExitError) Usage() bool { return e.Code == 2 }

// Local runs the agent binary on this host, in the caller's network namespace.
type Local struct {
	Path string // default "probe" from $PATH
}

// Run implements Runner.
func (l Local) Run(ctx context.Context, args ...string) ([]byte, error) {
	return l.Exec(ctx, append([]string{orDefault(l.Path, "probe")}, args...)...)
}

// Exec implements Execer.
func (l Local) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	return runCommand(ctx, "host", argv)
}

// Start runs a long-lived agent command (such as serve) on this host; see Process.
func (l Local) Start(ctx context.Context, args ...string) (*Process, error) {
	argv := append([]string{orDefault(l.Path, "probe")}, args...)
	return startCommand(ctx, "host", argv)
}

// Netns runs the agent binary of this host inside a named network namespace
// (`ip netns exec NAME PATH ARGS…`). It needs root.
type Netns struct {
	Name string // netns name, as listed by `ip netns list`
	Path string // host path of the agent binary (default "probe" from $PATH)
}

func (n Netns) argv(args []string) []string {
	return append([]string{"ip", "netns", "exec", n.Name, orDefault(n.Path, "probe")}, args...)
}

// Run implements Runner.
func (n Netns) Run(ctx context.Context, args ...string) ([]byte, error) {
	return runCommand(ctx, fmt.Sprintf("netns %q", n.Name), n.argv(args))
}

// Exec implements Execer (`ip netns exec NAME ARGV…`).
func (n Netns) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	full := append([]string{"ip", "netns", "exec", n.Name}, argv...)
	return runCommand(ctx, fmt.Sprintf("netns %q", n.Name), full)
}

// Start runs a long-lived agent command (such as serve) in the namespace; see Process.
func (n Netns) Start(ctx context.Context, args ...string) (*Process, error) {
	return startCommand(ctx, fmt.Sprintf("netns %q", n.Name), n.argv(args))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func runCommand(ctx context.Context, where string, argv []string) ([]byte, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("run on %s: empty command", where)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return stdout.Bytes(), &ExitError{Where: where, Args: argv, Code: ee.ExitCode(),
			Stderr: stderr.String()}
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("run %q on %s: %w", strings.Join(argv, " "), where, err)
	}
	return stdout.Bytes(), nil
}

// Process is an agent command running in the background, such as `probe serve`.
type Process struct {
	// Ready is the first line the command printed (serve prints its bound addresses).
	Ready  []byte
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startCommand starts argv and waits until it prints its first stdout line. The process is
// killed when ctx ends; Stop ends it earlier.
func startCommand(ctx context.Context, where string, argv []string) (*Process, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %q on %s: %w", argv[0], where, err)
	}
	p := &Process{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q on %s: %w", strings.Join(argv, " "), where, err)
	}
	line, rerr := bufio.NewReader(stdout).ReadBytes('\n')
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	if rerr != nil {
		werr := <-p.done
		return nil, fmt.Errorf("start %q on %s: no ready line (%v): %s", strings.Join(argv, " "),
			where, werr, strings.TrimSpace(p.stderr.String()))
	}
	p.Ready = bytes.TrimSpace(line)
	return p, nil
}

// Stop sends SIGTERM, waits up to grace for the process to exit, then kills it. It returns
// the stderr of a process that exited with an error.
func (p *Process) Stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return p.exitErr(err)
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("stop pid %d: killed after %v", p.cmd.Process.Pid, grace)
	}
}

func (p *Process) exitErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("pid %d: %w: %s", p.cmd.Process.Pid, err, strings.TrimSpace(p.stderr.String()))
}
