package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"hybridlab/probes"
)

func probesConnect(target string) probes.ConnectConfig {
	return probes.ConnectConfig{Target: target}
}

// fakeDocker answers exec calls with canned multiplexed output and exit code; it reports the
// exec as still running on the first inspect, as dockerd sometimes does.
type fakeDocker struct {
	stdout, stderr string
	code           int
	created        container.ExecOptions
	containerName  string
	inspects       int
	createErr      error
}

func (f *fakeDocker) ContainerExecCreate(_ context.Context, name string,
	o container.ExecOptions) (container.ExecCreateResponse, error) {
	f.containerName, f.created = name, o
	return container.ExecCreateResponse{ID: "exec1"}, f.createErr
}

func (f *fakeDocker) ContainerExecAttach(_ context.Context, id string,
	_ container.ExecAttachOptions) (types.HijackedResponse, error) {
	var buf bytes.Buffer
	_, _ = stdcopy.NewStdWriter(&buf, stdcopy.Stdout).Write([]byte(f.stdout))
	if f.stderr != "" {
		_, _ = stdcopy.NewStdWriter(&buf, stdcopy.Stderr).Write([]byte(f.stderr))
	}
	client, server := net.Pipe()
	server.Close()
	return types.HijackedResponse{Conn: client, Reader: bufio.NewReader(&buf)}, nil
}

func (f *fakeDocker) ContainerExecInspect(_ context.Context,
	id string) (container.ExecInspect, error) {
	f.inspects++
	return container.ExecInspect{ExecID: id, Running: f.inspects == 1, ExitCode: f.code}, nil
}

func TestDockerExecRunsAgentInContainer(t *testing.T) {
	f := &fakeDocker{stdout: `{"target":"10.0.1.254:7000","ok":true,"ms":0.2}` + "\n"}
	r := DockerExec{API: f, Container: "hlp-web"}
	res, err := Connect(testContext(t), r, probesConnect("10.0.1.254:7000"))
	if err != nil || !res.OK {
		t.Fatalf("connect via docker exec: %+v, %v", res, err)
	}
	if f.containerName != "hlp-web" || !f.created.AttachStdout || !f.created.AttachStderr ||
		strings.Join(f.created.Cmd, " ") != "/usr/local/bin/probe connect --target 10.0.1.254:7000" {
		t.Fatalf("exec created as %q in %q", f.created.Cmd, f.containerName)
	}
	if f.inspects != 2 {
		t.Fatalf("inspected %d times, want a retry while running", f.inspects)
	}
}

func TestDockerExecReportsExitCode(t *testing.T) {
	f := &fakeDocker{stdout: "partial", stderr: "probe rr: dial refused\n", code: 1}
	out, err := DockerExec{API: f, Container: "hlp-web"}.Exec(testContext(t), "probe", "rr")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(ee.Stderr, "dial refused") ||
		!strings.Contains(ee.Where, "hlp-web") {
		t.Fatalf("err = %v, want exit 1 with stderr", err)
	}
	if string(out) != "partial" {
		t.Fatalf("stdout %q", out)
	}
	f = &fakeDocker{createErr: errors.New("No such container: hlp-gone")}
	_, err = DockerExec{API: f, Container: "hlp-gone"}.Run(testContext(t), "version")
	if err == nil || !strings.Contains(err.Error(), `create exec "/usr/local/bin/probe version"`) {
		t.Fatalf("err = %v", err)
	}
}
