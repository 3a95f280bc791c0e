package dnssync

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"hybridlab/topology"
)

// Docker objects of the root test: networks hld-net (br-hld, 10.0.30.0/24)
// and hld-b-net (br-hld-b, 10.0.31.0/24), both internal (no route off the
// host), and containers hld-early and hld-late, all labelled
// io.hybridlab.lab=hld and removed when the test ends.
const (
	testImage     = topology.DefaultImage
	dockerTimeout = 60 * time.Second
)

var testNetworks = []struct{ name, bridge, subnet, gateway string }{
	{"hld-net", "br-hld", "10.0.30.0/24", "10.0.30.1"},
	{"hld-b-net", "br-hld-b", "10.0.31.0/24", "10.0.31.1"},
}

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates Docker networks and containers)")
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Skipf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		t.Skipf("dockerd not reachable: %v", err)
	}
	if _, err := cli.ImageInspect(ctx, testImage); err != nil {
		t.Skipf("image %s missing (go run ./setup up builds it): %v", testImage, err)
	}
	return cli
}

func makeNetworks(ctx context.Context, t *testing.T, cli *client.Client) {
	t.Helper()
	removeTestObjects(cli)
	t.Cleanup(func() { removeTestObjects(cli) })
	for _, n := range testNetworks {
		_, err := cli.NetworkCreate(ctx, n.name, network.CreateOptions{
			Driver:   "bridge",
			Internal: true,
			Labels:   map[string]string{topology.LabelLab: "hld"},
			Options:  map[string]string{"com.docker.network.bridge.name": n.bridge},
			IPAM: &network.IPAM{Config: []network.IPAMConfig{
				{Subnet: n.subnet, Gateway: n.gateway}}},
		})
		if err != nil {
			t.Fatalf("docker network create %s: %v", n.name, err)
		}
	}
}

// removeTestObjects removes this test's containers and networks; missing
// ones are fine.
func removeTestObjects(cli *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	for _, c := range []string{"hld-early", "hld-late"} {
		cli.ContainerRemove(ctx, c, container.RemoveOptions{Force: true})
	}
	for _, n := range testNetworks {
		cli.NetworkRemove(ctx, n.name)
	}
}

func runContainer(ctx context.Context, t *testing.T, cli *client.Client, name, net string) {
	t.Helper()
	_, err := cli.ContainerCreate(ctx,
		&container.Config{Image: testImage, Labels: map[string]string{topology.LabelLab: "hld"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(net)}, nil, nil, name)
	if err != nil {
		t.Fatalf("docker create --network %s --name %s: %v", net, name, err)
	}
	if err := cli.ContainerStart(ctx, name, container.StartOptions{}); err != nil {
		t.Fatalf("docker start %s: %v", name, err)
	}
}

func addressOn(ctx context.Context, t *testing.T, cli *client.Client, name, net string) string {
	t.Helper()
	info, err := cli.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatalf("docker inspect %s: %v", name, err)
	}
	ep, ok := info.NetworkSettings.Networks[net]
	if !ok || ep.IPAddress == "" {
		t.Fatalf("container %s has no address on %s", name, net)
	}
	return ep.IPAddress
}

// TestSyncerFollowsDockerOnEverySegment runs a Syncer against dockerd: a
// container already on the main network and one started later on segment
// b get records; connected to both networks and then taken off b, the
// later one keeps its name at its main address; removed, it loses it.
func TestSyncerFollowsDockerOnEverySegment(t *testing.T) {
	cli := dockerClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	makeNetworks(ctx, t, cli)
	runContainer(ctx, t, cli, "hld-early", "hld-net")
	state := t.TempDir()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- New(cli, testPlan(t), state).Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitRecord(t, state, "early", addressOn(ctx, t, cli, "hld-early", "hld-net"))
	runContainer(ctx, t, cli, "hld-late", "hld-b-net")
	waitRecord(t, state, "late", addressOn(ctx, t, cli, "hld-late", "hld-b-net"))

	if err := cli.NetworkConnect(ctx, "hld-net", "hld-late", nil); err != nil {
		t.Fatalf("docker network connect hld-net hld-late: %v", err)
	}
	main := addressOn(ctx, t, cli, "hld-late", "hld-net")
	if err := cli.NetworkDisconnect(ctx, "hld-b-net", "hld-late", false); err != nil {
		t.Fatalf("docker network disconnect hld-b-net hld-late: %v", err)
	}
	waitRecord(t, state, "late", main)

	if err := cli.ContainerRemove(ctx, "hld-late", container.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("docker rm -f hld-late: %v", err)
	}
	waitRecord(t, state, "late", "")
	waitRecord(t, state, "early", addressOn(ctx, t, cli, "hld-early", "hld-net"))
}
