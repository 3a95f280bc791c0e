package doctor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"hybridlab/topology"
)

// Environment tests read the real Docker daemon and libvirtd on the host
// network namespace. They create only objects named hldd*, on 10.66.6.0/24.

func requireDocker(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		t.Skip("docker test: /var/run/docker.sock is missing (dockerd not running)")
	}
	if out, err := exec.Command("docker", "version").CombinedOutput(); err != nil {
		t.Skipf("docker test: docker version failed: %v: %s", err, out)
	}
}

func host(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return strings.TrimSpace(string(out))
}

func hostCleanup(t *testing.T, cmd string) {
	t.Cleanup(func() {
		if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
			t.Logf("cleanup %s: %v: %s", cmd, err, out)
		}
	})
}

// TestCollectReadsDockerAndLibvirt reads the host as `setup doctor` would
// and checks the Docker default network and its bridge come back.
func TestCollectReadsDockerAndLibvirt(t *testing.T) {
	requireDocker(t)
	s, err := Collect(context.Background(), testPlan(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range s.Errors {
		if e.Source == "docker" || e.Source == "netlink" || e.Source == "nftables" ||
			e.Source == "iptables" {
			t.Errorf("source %s: %s", e.Source, e.Err)
		}
	}
	var found bool
	for _, n := range s.Docker.Networks {
		if n.Name == "bridge" {
			found = n.Bridge == "docker0" && len(n.Subnets) > 0
		}
	}
	if !found {
		t.Fatalf("Docker network \"bridge\" on docker0 not collected: %+v", s.Docker.Networks)
	}
	if _, err := exec.LookPath("virsh"); err == nil && !hasSourceError(s, "libvirt") &&
		len(s.Libvirt) == 0 {
		t.Log("libvirtd answered but defines no networks")
	}
}

func hasSourceError(s *HostState, source string) bool {
	for _, e := range s.Errors {
		if e.Source == source {
			return true
		}
	}
	return false
}

const dockerLab = `name: hldd
bridge: hldd0
subnet: 10.66.6.0/24
management:
  subnet: 10.66.7.0/24
  bridge: hlddm0
containers:
  - name: web
`

// busyboxImage builds a one-binary image from the host's busybox-static,
// since no registry is reachable.
func busyboxImage(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("docker test: busybox-static is needed to build a test image")
	}
	const image = "hldd/busybox:doctor"
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	host(t, fmt.Sprintf("cp %s %s/bin/busybox && ln -s busybox %s/bin/sleep", bb, root, root))
	host(t, fmt.Sprintf("tar -C %s -c . | docker import - %s", root, image))
	hostCleanup(t, "docker rmi -f "+image)
	return image
}

// TestEndpointDriftOnDocker runs a container off the plan's address, then
// unplugs its veth from the lab bridge, and checks each drift is found and
// cleared by its fix.
func TestEndpointDriftOnDocker(t *testing.T) {
	requireDocker(t)
	plan, err := topology.PlanYAML([]byte(dockerLab))
	if err != nil {
		t.Fatal(err)
	}
	image := busyboxImage(t)
	web := plan.Containers()[0]

	host(t, fmt.Sprintf("ip link add %s address %s type bridge stp_state 0 && "+
		"ip addr add %s dev %s && ip link set %s up", plan.Bridge.Name, plan.Bridge.MAC,
		plan.Bridge.Address, plan.Bridge.Name, plan.Bridge.Name))
	hostCleanup(t, "ip link del "+plan.Bridge.Name)
	host(t, fmt.Sprintf("docker network create -d bridge --subnet %s --ip-range %s "+
		"--gateway %s -o com.docker.network.bridge.name=%s --label %s=%s %s",
		plan.Subnet, plan.Docker.IPRange, plan.Gateway, plan.Bridge.Name, topology.LabelLab,
		plan.Lab, plan.Docker.Network))
	hostCleanup(t, "docker network rm "+plan.Docker.Network)
	run := func(ip string) { runContainer(t, plan, web, image, ip) }
	hostCleanup(t, "docker rm -f "+web.Object)
	run("10.66.6.200")

	opts := Options{NoLibvirt: true, Phase: PhaseRunning, StateDir: t.TempDir()}
	s, err := Collect(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := checkEndpointDrift(plan, s)
	f := expectOne(t, got, Error, "container "+web.Object)
	if !strings.Contains(f.Evidence, "IP 10.66.6.200, plan "+web.IP.String()) {
		t.Fatalf("evidence %q", f.Evidence)
	}
	c, _ := containerNamed(s, web.Object)
	if len(c.Endpoints) != 1 || c.Endpoints[0].HostMaster != plan.Bridge.Name {
		t.Fatalf("host side of %s not found on %s: %+v", web.Object, plan.Bridge.Name, c)
	}

	// `up` recreates the container from the plan; do the same by hand.
	host(t, "docker rm -f "+web.Object)
	run(web.IP.String())
	if got := collectCheck(t, plan, opts, checkEndpointDrift); len(got) != 0 {
		t.Fatalf("still drifting after recreating the container:\n%s", dump(got))
	}

	s, _ = Collect(context.Background(), plan, opts)
	c, _ = containerNamed(s, web.Object)
	veth := c.Endpoints[0].HostVeth
	host(t, "ip link set "+veth+" nomaster")
	got = collectCheck(t, plan, opts, checkEndpointDrift)
	f = expectOne(t, got, Error, "container "+web.Object)
	if f.Fix != "ip link set "+veth+" master "+plan.Bridge.Name {
		t.Fatalf("fix = %q", f.Fix)
	}
	host(t, f.Fix)
	if got := collectCheck(t, plan, opts, checkEndpointDrift); len(got) != 0 {
		t.Fatalf("still drifting after the fix:\n%s", dump(got))
	}
}

// runContainer starts node's container with the plan's MAC and the given
// address. The docker CLI here (28.x) refuses --mac-address against the
// 20.10 daemon (API 1.41), so the container-wide MAC field of the API is used.
func runContainer(t *testing.T, plan *topology.Plan, node topology.Node, image, ip string) {
	t.Helper()
	ctx := context.Background()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cfg := &container.Config{
		Image: image, Cmd: []string{"sleep", "600"}, MacAddress: node.MAC,
		Labels: map[string]string{topology.LabelLab: plan.Lab, topology.LabelNode: node.Name},
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		plan.Docker.Network: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}},
	}}
	hostCfg := &container.HostConfig{NetworkMode: container.NetworkMode(plan.Docker.Network)}
	created, err := cli.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, node.Object)
	if err != nil {
		t.Fatalf("create container %s: %v", node.Object, err)
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", node.Object, err)
	}
}

func collectCheck(t *testing.T, plan *topology.Plan, opts Options,
	check func(*topology.Plan, *HostState) []Finding) []Finding {
	t.Helper()
	s, err := Collect(context.Background(), plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	return check(plan, s)
}
