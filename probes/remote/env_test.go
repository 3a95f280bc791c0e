package remote

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"hybridlab/probes"
)

// Environment tests: they need root (netns) or a Docker daemon and skip with the reason
// otherwise. Objects they create are named hlp-<pid>-… and removed when the test ends.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// addNetns creates a named netns with loopback up and deletes it when the test ends.
func addNetns(t *testing.T, name string) {
	t.Helper()
	ip(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ip(t, "-n", name, "link", "set", "lo", "up")
}

func TestNetnsServeAndRRAcrossVeth(t *testing.T) {
	requireRoot(t)
	bin := agent(t)
	a, b := fmt.Sprintf("hlp-%d-a", os.Getpid()), fmt.Sprintf("hlp-%d-b", os.Getpid())
	addNetns(t, a)
	addNetns(t, b)
	// Creating the pair inside netns a keeps the host's namespace untouched even on failure.
	ip(t, "-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b)
	ip(t, "-n", a, "addr", "add", "10.88.0.1/24", "dev", "veth0")
	ip(t, "-n", b, "addr", "add", "10.88.0.2/24", "dev", "veth1")
	ip(t, "-n", a, "link", "set", "veth0", "up")
	ip(t, "-n", b, "link", "set", "veth1", "up")

	server := Netns{Name: a, Path: bin}
	p, err := server.Start(testContext(t), "serve", "--tcp", "10.88.0.1:7000",
		"--udp", "10.88.0.1:7001", "--sink", "10.88.0.1:7002", "--http", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(testDeadline); err != nil {
			t.Errorf("stop serve in %s: %v", a, err)
		}
	})
	client := Netns{Name: b, Path: bin}
	for _, proto := range []string{"tcp", "udp"} {
		res, err := RR(testContext(t), client, probes.RRConfig{Target: "10.88.0.1:" +
			map[string]string{"tcp": "7000", "udp": "7001"}[proto], Proto: proto, Count: 500,
			Warmup: 10})
		if err != nil || res.OK != 500 || res.Errors != 0 || res.P50Us <= 0 {
			t.Fatalf("%s rr across veth: %+v, %v", proto, res, err)
		}
		t.Logf("%s rr across veth: p50 %.1fµs p99 %.1fµs", proto, res.P50Us, res.P99Us)
	}
	tp, err := Tput(testContext(t), client, probes.TputConfig{Target: "10.88.0.1:7002",
		Duration: 200 * time.Millisecond})
	if err != nil || tp.Bytes <= 0 {
		t.Fatalf("tput across veth: %+v, %v", tp, err)
	}
	c, err := Connect(testContext(t), client, probes.ConnectConfig{Target: "10.88.0.1:7009"})
	if err != nil || c.OK || c.Kind != probes.KindRefused {
		t.Fatalf("connect to closed port across veth: %+v, %v", c, err)
	}
	// Neighbour resolution gives up after 3 ARP probes a second apart (the kernel defaults),
	// then the connect fails with EHOSTUNREACH.
	c, err = Connect(testContext(t), client, probes.ConnectConfig{Target: "10.88.0.9:7000",
		Timeout: 8 * time.Second})
	if err != nil || c.OK || c.Kind != probes.KindUnreachable {
		t.Fatalf("connect to absent neighbour: %+v, %v", c, err)
	}
}

func TestNetnsPingWithBusybox(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("needs busybox for ping")
	}
	n := fmt.Sprintf("hlp-%d-p", os.Getpid())
	addNetns(t, n)
	res, err := Ping(testContext(t), busybox{Netns{Name: n}}, "127.0.0.1", 2)
	if err != nil || res.Transmitted != 2 || res.Received != 2 || res.AvgMs <= 0 {
		t.Fatalf("ping loopback in netns: %+v, %v", res, err)
	}
}

// busybox runs commands as busybox applets (the host has no iputils ping).
type busybox struct{ Execer }

func (b busybox) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	return b.Execer.Exec(ctx, append([]string{"busybox"}, argv...)...)
}

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := NewDockerClient()
	if err != nil {
		t.Skipf("needs a Docker daemon: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Ping(testContext(t)); err != nil {
		t.Skipf("needs a Docker daemon: %v", err)
	}
	return c
}

// scratchContext is a build context with the agent as the only file of a FROM scratch image.
func scratchContext(t *testing.T, bin string) io.Reader {
	t.Helper()
	agentBytes, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY probe /usr/local/bin/probe\n" +
			"ENTRYPOINT [\"/usr/local/bin/probe\"]\nCMD [\"serve\"]\n")},
		{"probe", 0o755, agentBytes},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func buildScratchImage(t *testing.T, c *client.Client, tag string) {
	t.Helper()
	resp, err := c.ImageBuild(testContext(t), scratchContext(t, agent(t)),
		build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true,
			Labels: map[string]string{"io.hybridlab.test": "probes"}})
	if err != nil {
		t.Fatalf("build image %s: %v", tag, err)
	}
	defer resp.Body.Close()
	t.Cleanup(func() {
		_, err := c.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true})
		if err != nil {
			t.Errorf("remove image %s: %v", tag, err)
		}
	})
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("read build output: %v", err)
		}
		if msg.Error != "" {
			t.Fatalf("build image %s: %s", tag, msg.Error)
		}
	}
}

func TestDockerExecInScratchContainer(t *testing.T) {
	c := dockerClient(t)
	name := fmt.Sprintf("hlp-probe-%d", os.Getpid())
	buildScratchImage(t, c, name+":test")
	created, err := c.ContainerCreate(testContext(t), &container.Config{Image: name + ":test",
		Labels: map[string]string{"io.hybridlab.test": "probes"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, name)
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	t.Cleanup(func() {
		err := c.ContainerRemove(context.Background(), created.ID,
			container.RemoveOptions{Force: true})
		if err != nil {
			t.Errorf("remove container %s: %v", name, err)
		}
	})
	if err := c.ContainerStart(testContext(t), created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
	r := DockerExec{API: c, Container: name}
	waitConnect(t, r, "127.0.0.1:7000")
	res, err := RR(testContext(t), r, probes.RRConfig{Target: "127.0.0.1:7001", Proto: "udp",
		Count: 200})
	if err != nil || res.OK != 200 {
		t.Fatalf("rr inside scratch container: %+v, %v", res, err)
	}
	_, err = r.Run(testContext(t), "rr")
	var ee *ExitError
	if !errors.As(err, &ee) || !ee.Usage() || !strings.Contains(ee.Stderr, "--target") {
		t.Fatalf("usage error via docker exec: %v", err)
	}
}

// waitConnect polls until the agent's echo in the container accepts connections.
func waitConnect(t *testing.T, r Runner, target string) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for {
		res, err := Connect(testContext(t), r, probes.ConnectConfig{Target: target,
			Timeout: time.Second})
		if err == nil && res.OK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo %s never answered: %+v, %v", target, res, err)
		}
	}
}
