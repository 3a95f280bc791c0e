package remote

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// ExecAPI is the part of the Docker client that DockerExec uses; *client.Client implements it.
type ExecAPI interface {
	ContainerExecCreate(ctx context.Context, container string,
		options container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string,
		config container.ExecAttachOptions) (types.HijackedResponse, error)
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
}

// DockerExec runs the agent inside a running container (`docker exec CONTAINER
// /usr/local/bin/probe ARGS…`), capturing stdout, stderr and the exit code. Docker cannot
// signal an exec: when ctx ends, Run stops waiting but the command runs on to its own end
// (every probe command but serve is bounded by its flags).
type DockerExec struct {
	API       ExecAPI
	Container string // container name or ID
	Path      string // agent path in the container; default AgentPath
}

// NewDockerClient connects to the Docker daemon named by the environment (DOCKER_HOST, default
// the local socket) and negotiates the API version, so daemons as old as API 1.41 work.
func NewDockerClient() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("create docker client: %w", err)
	}
	return c, nil
}

// Run implements Runner.
func (d DockerExec) Run(ctx context.Context, args ...string) ([]byte, error) {
	return d.Exec(ctx, append([]string{orDefault(d.Path, AgentPath)}, args...)...)
}

// Exec implements Execer.
func (d DockerExec) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	where := fmt.Sprintf("container %q", d.Container)
	cmdline := strings.Join(argv, " ")
	created, err := d.API.ContainerExecCreate(ctx, d.Container, container.ExecOptions{
		Cmd: argv, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, fmt.Errorf("create exec %q in %s: %w", cmdline, where, err)
	}
	att, err := d.API.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("attach exec %q in %s: %w", cmdline, where, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()

	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		return stdout.Bytes(), fmt.Errorf("read exec %q in %s: %w", cmdline, where, err)
	}
	code, err := d.exitCode(ctx, created.ID)
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("inspect exec %q in %s: %w", cmdline, where, err)
	}
	if code != 0 {
		return stdout.Bytes(), &ExitError{Where: where, Args: argv, Code: code,
			Stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

// exitCode waits for the exec to be reported finished: dockerd may close the output stream
// a moment before it records the exit code.
func (d DockerExec) exitCode(ctx context.Context, id string) (int, error) {
	const poll = 10 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := d.API.ContainerExecInspect(ctx, id)
		if err != nil {
			return 0, err
		}
		if !st.Running {
			return st.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("exec %s still running after its output closed", id)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(poll):
		}
	}
}
