package containers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/vishvananda/netlink"

	"hybridlab/provision/dnsmasq"
	"hybridlab/topology"
)

// Test resources: lab "hlc" on bridge br-hlc, 10.0.5.0/24, images tagged
// hybridlab-test/*.
const (
	testImage     = "hybridlab-test/agent:latest"
	testOverlapNW = "hybridlab-test-overlap"
	// dockerTimeout bounds each test's Docker calls.
	dockerTimeout = 2 * time.Minute
)

const testLab = `
name: hlc
bridge: br-hlc
subnet: 10.0.5.0/24
domain: lab
mtu: 1500
dhcp_range: 10.0.5.10-10.0.5.99
docker_range: 10.0.5.128/25
vms:
  - name: vm1
containers:
  - name: c1
    image: ` + testImage + `
  - name: c2
    image: ` + testImage + `
`

func testPlan(t *testing.T, yaml string) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// needDocker skips unless the test runs as root with a reachable dockerd.
func needDocker(t *testing.T) (*client.Client, context.Context) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux (creates bridges and Docker objects)")
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Skipf("no docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	t.Cleanup(cancel)
	if _, err := cli.Ping(ctx); err != nil {
		t.Skipf("dockerd not reachable: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, ctx
}

// makeBridge creates the plan's bridge as the bridge package would (fixed
// MAC, MTU, gateway address, STP off, up) and deletes it at cleanup.
func makeBridge(t *testing.T, p *topology.Plan) {
	t.Helper()
	mac, _ := net.ParseMAC(p.Bridge.MAC)
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.HardwareAddr, attrs.MTU = p.Bridge.Name, mac, p.Bridge.MTU
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("ip link add %s type bridge: %v", p.Bridge.Name, err)
	}
	t.Cleanup(func() { netlink.LinkDel(br) })
	addr, _ := netlink.ParseAddr(p.Bridge.Address.String())
	if err := netlink.AddrAdd(br, addr); err != nil {
		t.Fatalf("ip addr add %s dev %s: %v", addr, p.Bridge.Name, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatalf("ip link set %s up: %v", p.Bridge.Name, err)
	}
}

// cleanupLab removes the lab's Docker objects at the end of the test.
func cleanupLab(t *testing.T, cli *client.Client, lab string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
		defer cancel()
		if _, err := Remove(ctx, cli, lab); err != nil && !errors.Is(err, ErrBridgeChanged) {
			t.Errorf("cleanup lab %q: %v", lab, err)
		}
	})
}

func buildTestImage(t *testing.T, ctx context.Context, cli *client.Client) Image {
	t.Helper()
	img, err := EnsureImage(ctx, cli, ImageSpec{Ref: testImage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeImages(cli, img.ID) })
	return img
}

func TestEnsureImageBuildsOnceAndRebuildsOnChange(t *testing.T) {
	cli, ctx := needDocker(t)
	ref := "hybridlab-test/agent:cache"
	removeImages(cli, ref)

	start := time.Now()
	first, err := EnsureImage(ctx, cli, ImageSpec{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EnsureImage built %s in %v", short(first.ID), time.Since(start))
	t.Cleanup(func() { removeImages(cli, first.ID) })
	if !first.Built || first.Agent {
		t.Fatalf("first EnsureImage: %+v, want built without agent", first)
	}
	again, err := EnsureImage(ctx, cli, ImageSpec{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	if again.Built || again.ID != first.ID {
		t.Fatalf("second EnsureImage: %+v, want cache hit on %s", again, first.ID)
	}

	agent := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(agent, []byte("#!/bin/sh\nexec sleep 2147483647\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	withAgent, err := EnsureImage(ctx, cli, ImageSpec{Ref: ref, Agent: agent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeImages(cli, withAgent.ID) })
	if !withAgent.Built || withAgent.ID == first.ID || withAgent.Hash == first.Hash {
		t.Fatalf("EnsureImage with agent: %+v, want a new image", withAgent)
	}
	inspect, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(inspect.Config.Cmd, " "); got != "probe serve" {
		t.Errorf("image command %q, want %q", got, "probe serve")
	}
	t.Logf("image %s: %d bytes", short(withAgent.ID), inspect.Size)
}

// removeImages is `docker rmi -f REF…`; a missing image is fine.
func removeImages(cli *client.Client, refs ...string) {
	for _, ref := range refs {
		cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true})
	}
}

func TestLabOnPreexistingBridge(t *testing.T) {
	cli, ctx := needDocker(t)
	p := testPlan(t, testLab)
	img := buildTestImage(t, ctx, cli)
	makeBridge(t, p)
	cleanupLab(t, cli, p.Lab)

	before, err := SnapshotBridge(p.Bridge.Name)
	if err != nil {
		t.Fatal(err)
	}
	nw, err := EnsureNetwork(ctx, cli, p)
	if err != nil {
		t.Fatalf("EnsureNetwork: %v", err)
	}
	if !nw.Created {
		t.Fatalf("EnsureNetwork adopted an existing network %s", nw.ID)
	}
	checkICCRule(t, p.Bridge.Name)

	start := time.Now()
	acts, err := EnsureContainers(ctx, cli, p)
	if err != nil {
		t.Fatalf("EnsureContainers: %v", err)
	}
	t.Logf("EnsureContainers created %d containers in %v", len(acts), time.Since(start))
	ids := map[string]string{}
	for _, a := range acts {
		if a.Action != ActionCreated {
			t.Errorf("container %s: %s, want %s", a.Name, a.Action, ActionCreated)
		}
		ids[a.Name] = a.ID
	}
	checkList(t, ctx, cli, p, img.ID)
	checkPings(t, ctx, cli, p)
	checkLabDNS(t, ctx, cli, p)
	checkBridgeUnchanged(t, before, "after network create and container start")

	checkIdempotent(t, ctx, cli, p, ids)
	checkStoppedIsStarted(t, ctx, cli, p)
	checkChangedIsRecreated(t, ctx, cli, ids)
	checkBridgeUnchanged(t, before, "after container stop, start and recreate")

	rm, err := Remove(ctx, cli, p.Lab)
	if err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if len(rm.Containers) != 2 || len(rm.Networks) != 1 {
		t.Errorf("Remove removed %+v, want 2 containers and 1 network", rm)
	}
	checkBridgeUnchanged(t, before, "after docker rm and docker network rm")
	checkNothingLabelled(t, ctx, cli, p.Lab)
}

func checkList(t *testing.T, ctx context.Context, cli *client.Client, p *topology.Plan,
	imageID string,
) {
	t.Helper()
	infos, err := List(ctx, cli, p.Lab)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(infos) != len(p.Containers()) {
		t.Fatalf("List returned %d containers, want %d", len(infos), len(p.Containers()))
	}
	for _, info := range infos {
		n, _ := p.Node(info.Node)
		if info.Name != n.Object || info.IP != n.IP.String() || info.MAC != n.MAC ||
			info.State != "running" || info.Master != p.Bridge.Name || info.Veth == "" {
			t.Errorf("List: %+v; want name %s ip %s mac %s running on %s",
				info, n.Object, n.IP, n.MAC, p.Bridge.Name)
		}
		c, _ := cli.ContainerInspect(ctx, info.ID)
		if c.Image != imageID {
			t.Errorf("container %s runs image %s, want %s", info.Name, c.Image, imageID)
		}
	}
}

func checkPings(t *testing.T, ctx context.Context, cli *client.Client, p *topology.Plan) {
	t.Helper()
	cs := p.Containers()
	for _, target := range []string{cs[1].IP.String(), p.Gateway.String()} {
		out, code := execIn(t, ctx, cli, cs[0].Object, "ping", "-c", "2", "-W", "2", target)
		if code != 0 {
			t.Errorf("ping %s from %s: exit %d\n%s", target, cs[0].Object, code, out)
		}
	}
	tools := "for t in ping nslookup wget nc ip; do command -v $t || exit 1; done"
	if out, code := execIn(t, ctx, cli, cs[0].Object, "sh", "-c", tools); code != 0 {
		t.Errorf("busybox tools in %s: exit %d\n%s", cs[0].Object, code, out)
	}
	out, code := execIn(t, ctx, cli, cs[1].Object, "ip", "-o", "link", "show", "eth0")
	if code != 0 || !strings.Contains(out, cs[1].MAC) || !strings.Contains(out, "mtu 1500") {
		t.Errorf("ip link in %s: exit %d, want mac %s mtu 1500:\n%s", cs[1].Object, code, cs[1].MAC, out)
	}
}

// checkLabDNS starts the lab's dnsmasq on br-hlc and resolves plan names
// from a container, through Docker's embedded resolver, which forwards to
// the gateway (--dns GW --dns-search DOMAIN). Only lab names are asked.
func checkLabDNS(t *testing.T, ctx context.Context, cli *client.Client, p *topology.Plan) {
	t.Helper()
	state := t.TempDir()
	for _, d := range []string{filepath.Dir(state), state} {
		os.Chmod(d, 0o755)
	}
	t.Cleanup(func() { dnsmasq.Stop(state) })
	if _, err := dnsmasq.Ensure(ctx, p, state); err != nil {
		t.Fatalf("start lab dnsmasq: %v", err)
	}
	c1, c2 := p.Containers()[0], p.Containers()[1]
	vm1, _ := p.Node("vm1")
	for name, ip := range map[string]string{c2.DNS: c2.IP.String(), "vm1": vm1.IP.String()} {
		out, code := execIn(t, ctx, cli, c1.Object, "nslookup", name)
		if code != 0 || !strings.Contains(out, "Address: "+ip) {
			t.Errorf("nslookup %s in %s: exit %d, want %s:\n%s", name, c1.Object, code, ip, out)
		}
	}
}

// checkICCRule looks for the FORWARD rule Docker adds only with ICC on.
func checkICCRule(t *testing.T, br string) {
	t.Helper()
	out, err := exec.Command("iptables", "-S", "FORWARD").Output()
	if err != nil {
		t.Logf("iptables -S FORWARD: %v; ICC rule not checked", err)
		return
	}
	rule := "-A FORWARD -i " + br + " -o " + br + " -j ACCEPT"
	if !strings.Contains(string(out), rule) {
		t.Errorf("iptables FORWARD lacks %q:\n%s", rule, out)
	}
}

func checkBridgeUnchanged(t *testing.T, before BridgeState, when string) {
	t.Helper()
	after, err := SnapshotBridge(before.Name)
	if err != nil {
		t.Fatalf("bridge %s %s: %v", before.Name, when, err)
	}
	if ch := before.Changes(after); len(ch) > 0 {
		t.Errorf("bridge %s changed %s: %v", before.Name, when, ch)
	}
}

func checkIdempotent(t *testing.T, ctx context.Context, cli *client.Client, p *topology.Plan,
	ids map[string]string,
) {
	t.Helper()
	nw, err := EnsureNetwork(ctx, cli, p)
	if err != nil || nw.Created {
		t.Fatalf("second EnsureNetwork: %+v, %v; want the network adopted", nw, err)
	}
	acts, err := EnsureContainers(ctx, cli, p)
	if err != nil {
		t.Fatalf("second EnsureContainers: %v", err)
	}
	for _, a := range acts {
		if a.Action != ActionKept || a.ID != ids[a.Name] {
			t.Errorf("second EnsureContainers on %s: %s (%s) id %s, want kept id %s",
				a.Name, a.Action, a.Reason, short(a.ID), short(ids[a.Name]))
		}
	}
}

func checkStoppedIsStarted(t *testing.T, ctx context.Context, cli *client.Client,
	p *topology.Plan,
) {
	t.Helper()
	name := p.Containers()[0].Object
	stop := 0
	if err := cli.ContainerStop(ctx, name, container.StopOptions{Timeout: &stop}); err != nil {
		t.Fatal(err)
	}
	acts, err := EnsureContainers(ctx, cli, p)
	if err != nil {
		t.Fatalf("EnsureContainers after stop: %v", err)
	}
	for _, a := range acts {
		want := ActionKept
		if a.Name == name {
			want = ActionStarted
		}
		if a.Action != want {
			t.Errorf("EnsureContainers after stop on %s: %s, want %s", a.Name, a.Action, want)
		}
	}
}

// checkChangedIsRecreated gives c2 another MAC in the plan: only c2 is
// created again, with the new MAC.
func checkChangedIsRecreated(t *testing.T, ctx context.Context, cli *client.Client,
	ids map[string]string,
) {
	t.Helper()
	p := testPlan(t, strings.Replace(testLab, "  - name: c2\n",
		"  - name: c2\n    mac: 02:42:0a:00:05:99\n", 1))
	acts, err := EnsureContainers(ctx, cli, p)
	if err != nil {
		t.Fatalf("EnsureContainers with a new mac: %v", err)
	}
	for _, a := range acts {
		want := ActionKept
		if a.Node == "c2" {
			want = ActionRecreated
		}
		if a.Action != want {
			t.Errorf("EnsureContainers with a new mac on %s: %s, want %s", a.Name, a.Action, want)
		}
	}
	infos, err := List(ctx, cli, p.Lab)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.Node == "c2" && (info.MAC != "02:42:0a:00:05:99" || info.ID == ids[info.Name]) {
			t.Errorf("c2 after recreate: %+v; want mac 02:42:0a:00:05:99 and a new id", info)
		}
	}
}

func checkNothingLabelled(t *testing.T, ctx context.Context, cli *client.Client, lab string) {
	t.Helper()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilter(lab)})
	if err != nil || len(cs) != 0 {
		t.Errorf("containers left for lab %s: %d (%v)", lab, len(cs), err)
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: labelFilter(lab)})
	if err != nil || len(ns) != 0 {
		t.Errorf("networks left for lab %s: %d (%v)", lab, len(ns), err)
	}
}

// execIn is `docker exec NAME CMD…`; it returns the combined output and
// the exit code.
func execIn(t *testing.T, ctx context.Context, cli *client.Client, name string,
	cmd ...string,
) (string, int) {
	t.Helper()
	ex, err := cli.ContainerExecCreate(ctx, name, container.ExecOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		t.Fatalf("docker exec %s %v: %v", name, cmd, err)
	}
	resp, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("docker exec %s %v: %v", name, cmd, err)
	}
	defer resp.Close()
	var out bytes.Buffer
	io.Copy(&out, resp.Reader)
	st, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatalf("docker exec %s %v: %v", name, cmd, err)
	}
	return out.String(), st.ExitCode
}

func TestEnsureNetworkNamesOverlappingNetwork(t *testing.T) {
	cli, ctx := needDocker(t)
	p := testPlan(t, testLab)
	makeBridge(t, p)
	cleanupLab(t, cli, p.Lab)
	// A config-only network holds the subnet in Docker's books without
	// creating a bridge or adding an address on the host.
	_, err := cli.NetworkCreate(ctx, testOverlapNW, network.CreateOptions{
		ConfigOnly: true,
		IPAM:       &network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.0.5.192/26"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.NetworkRemove(context.Background(), testOverlapNW) })

	_, err = EnsureNetwork(ctx, cli, p)
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), testOverlapNW) {
		t.Fatalf("EnsureNetwork: %v; want ErrOverlap naming %q", err, testOverlapNW)
	}
	t.Logf("error: %v", err)
}

func TestEnsureNetworkRejectsChangedSettings(t *testing.T) {
	cli, ctx := needDocker(t)
	p := testPlan(t, testLab)
	makeBridge(t, p)
	cleanupLab(t, cli, p.Lab)
	if _, err := EnsureNetwork(ctx, cli, p); err != nil {
		t.Fatal(err)
	}
	changed := testPlan(t, strings.Replace(testLab, "docker_range: 10.0.5.128/25",
		"docker_range: 10.0.5.192/26", 1))
	_, err := EnsureNetwork(ctx, cli, changed)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "ip-range") {
		t.Fatalf("EnsureNetwork with another ip-range: %v; want ErrMismatch naming ip-range", err)
	}
	t.Logf("error: %v", err)
}

func TestEnsureNetworkNeedsTheBridge(t *testing.T) {
	cli, ctx := needDocker(t)
	p := testPlan(t, testLab)
	cleanupLab(t, cli, p.Lab)
	if _, err := EnsureNetwork(ctx, cli, p); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("EnsureNetwork without bridge: %v; want ErrNoBridge", err)
	}
}

func TestEnsureContainersLeavesForeignContainersAlone(t *testing.T) {
	cli, ctx := needDocker(t)
	p := testPlan(t, testLab)
	buildTestImage(t, ctx, cli)
	makeBridge(t, p)
	cleanupLab(t, cli, p.Lab)
	if _, err := EnsureNetwork(ctx, cli, p); err != nil {
		t.Fatal(err)
	}
	name := p.Containers()[0].Object
	foreign, err := cli.ContainerCreate(ctx, &container.Config{Image: testImage}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), foreign.ID, container.RemoveOptions{Force: true})
	})

	_, err = EnsureContainers(ctx, cli, p)
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), name) {
		t.Fatalf("EnsureContainers over a foreign %s: %v; want ErrForeign naming it", name, err)
	}
	if _, err := cli.ContainerInspect(ctx, foreign.ID); err != nil {
		t.Errorf("foreign container %s was touched: %v", name, err)
	}
}

func TestCheckContainersRefusesForeignBeforeAnyChange(t *testing.T) {
	cli, ctx := needDocker(t)
	p := testPlan(t, testLab)
	buildTestImage(t, ctx, cli)
	cleanupLab(t, cli, p.Lab)
	if err := CheckContainers(ctx, cli, p); err != nil {
		t.Fatalf("CheckContainers with no container: %v", err)
	}
	name := p.Containers()[1].Object
	other, err := cli.ContainerCreate(ctx, &container.Config{Image: testImage,
		Labels: map[string]string{topology.LabelLab: "hlc-other"}}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), other.ID, container.RemoveOptions{Force: true})
	})
	err = CheckContainers(ctx, cli, p)
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), `belongs to lab "hlc-other"`) {
		t.Fatalf("CheckContainers over another lab's %s: %v", name, err)
	}
}

// TestPruneNetworksRemovesDroppedSegments: a lab network whose segment left the plan goes,
// with the lab's containers on it; one that carries a container of someone else stays.
func TestPruneNetworksRemovesDroppedSegments(t *testing.T) {
	cli, ctx := needDocker(t)
	p := testPlan(t, testLab)
	buildTestImage(t, ctx, cli)
	cleanupLab(t, cli, p.Lab)
	labels := map[string]string{topology.LabelLab: p.Lab}
	mkNet := func(name string) {
		t.Helper()
		if _, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge",
			Labels: labels, Internal: true}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.NetworkRemove(context.Background(), name) })
	}
	run := func(name, net string, lab map[string]string) {
		t.Helper()
		c, err := cli.ContainerCreate(ctx, &container.Config{Image: testImage, Labels: lab},
			&container.HostConfig{NetworkMode: container.NetworkMode(net)}, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
		})
	}
	mkNet("hlc-gone-net")
	run("hlc-gone1", "hlc-gone-net", labels)
	mkNet("hlc-held-net")
	run("hlc-held-by-user", "hlc-held-net", nil)

	pr, err := PruneNetworks(ctx, cli, p.Lab, []string{p.Docker.Network})
	if !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "hlc-held-by-user") {
		t.Errorf("PruneNetworks: %v; want ErrForeign naming hlc-held-by-user", err)
	}
	if !slices.Equal(pr.Networks, []string{"hlc-gone-net"}) ||
		!slices.Equal(pr.Containers, []string{"hlc-gone1"}) {
		t.Errorf("pruned %+v; want network hlc-gone-net and container hlc-gone1", pr)
	}
	if _, err := cli.NetworkInspect(ctx, "hlc-held-net", network.InspectOptions{}); err != nil {
		t.Errorf("network with a foreign container was removed: %v", err)
	}
}
