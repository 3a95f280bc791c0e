package vagrant_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hybridlab/provision/accel"
	"hybridlab/provision/box"
	"hybridlab/provision/libvirt"
	"hybridlab/provision/vagrant"
	"hybridlab/topology"
)

// The test lab: names and subnets reserved for this package's tests.
const vmLab = `
name: hlv
bridge: br-hlv
subnet: 10.0.2.0/24
management:
  subnet: 10.0.8.0/24
  bridge: virbr-hlv
vms:
  - name: base1
  - name: docker1
    role: docker
`

const (
	upTimeout   = 6 * time.Minute
	pingTimeout = 30 * time.Second
)

func requireVMHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("VM tests need root (bridge, dnsmasq, libvirt)")
	}
	if testing.Short() {
		t.Skip("VM tests boot real VMs; skipped with -short")
	}
	for _, tool := range []string{"vagrant", "dnsmasq", "ip", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("VM tests need %s: %v", tool, err)
		}
	}
	if _, err := os.Stat(libvirt.DefaultSocket); err != nil {
		t.Skipf("VM tests need libvirtd: %v", err)
	}
}

// lockTestLab serialises tests of every package that use the hlv test
// lab's names, since `go test ./...` runs packages in parallel.
func lockTestLab(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll("/var/lib/hybridlab", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile("/var/lib/hybridlab/hlv.testlock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// labBridge creates br-hlv as the lab's bridge package would, and removes
// it when the test ends.
func labBridge(t *testing.T, p *topology.Plan) {
	t.Helper()
	_ = exec.Command("ip", "link", "del", p.Bridge.Name).Run()
	run(t, "ip", "link", "add", p.Bridge.Name, "address", p.Bridge.MAC, "type", "bridge",
		"stp_state", "0", "forward_delay", "0")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", p.Bridge.Name).Run() })
	run(t, "ip", "addr", "add", p.Bridge.Address.String(), "dev", p.Bridge.Name)
	run(t, "ip", "link", "set", p.Bridge.Name, "up")
	// Docker's FORWARD policy DROP also filters bridged frames (fault B02)
	// on a bridge Docker does not own; the lab's bridge package adds the
	// same rule for the real bridge.
	rule := []string{"DOCKER-USER", "-i", p.Bridge.Name, "-o", p.Bridge.Name,
		"-m", "comment", "--comment", "hybridlab:" + p.Lab, "-j", "ACCEPT"}
	if exec.Command("iptables", append([]string{"-C"}, rule...)...).Run() != nil {
		if exec.Command("iptables", append([]string{"-I"}, rule...)...).Run() == nil {
			t.Cleanup(func() {
				_ = exec.Command("iptables", append([]string{"-D"}, rule...)...).Run()
			})
		}
	}
}

// labDHCP starts a throwaway dnsmasq on the bridge only: DHCP with the
// plan's reservations, no router option, the gateway and lab domain
// announced as DNS server and search domain but no DNS service itself
// (--port=0) and no upstream.
// It returns the lease file.
func labDHCP(t *testing.T, p *topology.Plan) string {
	t.Helper()
	dir := t.TempDir()
	leases := filepath.Join(dir, "leases")
	pidFile := filepath.Join(dir, "dnsmasq.pid")
	args := []string{"--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0",
		"--interface=" + p.Bridge.Name, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=" + p.DHCP.First.String() + "," + p.DHCP.Last.String() + ",255.255.255.0,1h",
		"--dhcp-option=3", "--dhcp-option=6," + p.Gateway.String(),
		"--dhcp-option=15," + p.Domain, "--dhcp-authoritative", "--dhcp-leasefile=" + leases,
		"--pid-file=" + pidFile, "--log-facility=" + filepath.Join(dir, "dnsmasq.log")}
	for _, n := range p.VMs() {
		args = append(args, "--dhcp-host="+n.MAC+","+n.IP.String()+","+n.Name)
	}
	run(t, "dnsmasq", args...)
	t.Cleanup(func() {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			if proc, err := os.FindProcess(pid); err == nil {
				_ = proc.Kill()
			}
		}
	})
	return leases
}

func leaseCheck(file string) vagrant.LeaseCheck {
	return func(_ context.Context, n topology.Node) (bool, error) {
		data, err := os.ReadFile(file)
		if err != nil {
			return false, nil
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && strings.EqualFold(f[1], n.MAC) && f[2] == n.IP.String() {
				return true, nil
			}
		}
		return false, nil
	}
}

type vmEnv struct {
	plan *topology.Plan
	lab  *vagrant.Lab
	virt *libvirt.Conn
}

func setupLab(t *testing.T) *vmEnv {
	t.Helper()
	requireVMHost(t)
	lockTestLab(t)
	lab, err := topology.Parse([]byte(vmLab))
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	b, err := box.Build(ctx, box.Options{Agent: os.Getenv("HYBRIDLAB_AGENT")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("box %s %s (cached %v) in %s", b.Name, b.Version, b.Cached, time.Since(start))
	dec, err := accel.Decide(ctx, accel.Options{Kernel: b.Kernel,
		Override: os.Getenv("HYBRIDLAB_ACCEL")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("accelerator: %s", dec.Reason)
	labBridge(t, p)
	virt, err := libvirt.Dial("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { virt.Close() })
	// HYBRIDLAB_TB_SIZE compares TCG cache sizes (-1: QEMU's default).
	tb, _ := strconv.Atoi(os.Getenv("HYBRIDLAB_TB_SIZE"))
	cfg := vagrant.Config{Plan: p, Accel: dec.Accel, Box: b.Name, BoxVersion: b.Version,
		StateDir: filepath.Join("/var/lib/hybridlab", p.Lab), IPv6: vagrant.HostIPv6(),
		TBSizeMiB: tb}
	l := vagrant.New(cfg, virt)
	t.Cleanup(func() {
		if os.Getenv("HYBRIDLAB_KEEP_VMS") != "" {
			t.Log("HYBRIDLAB_KEEP_VMS set: VMs left running")
			return
		}
		start := time.Now()
		if err := l.Teardown(context.Background(), nil); err != nil {
			t.Errorf("teardown: %v", err)
		}
		t.Logf("teardown took %s", time.Since(start))
		assertGone(t, virt, p)
		_ = os.Remove(cfg.StateDir) // only when empty: other packages may keep state there
	})
	return &vmEnv{plan: p, lab: l, virt: virt}
}

func assertGone(t *testing.T, virt *libvirt.Conn, p *topology.Plan) {
	t.Helper()
	o := libvirt.Owner{Lab: p.Lab}
	for _, n := range p.VMs() {
		o.Planned = append(o.Planned, n.Object)
	}
	if doms, err := virt.LabDomains(o); err != nil || len(doms) > 0 {
		t.Errorf("domains left after teardown: %v %v", doms, err)
	}
	for _, n := range p.VMs() {
		vols, err := virt.DomainVolumes(vagrant.Pool, n.Object)
		if err != nil || len(vols) > 0 {
			t.Errorf("volumes of %s left after teardown: %v %v", n.Object, vols, err)
		}
	}
	if err := exec.Command("virsh", "-c", "qemu:///system", "net-info",
		p.Management.Network).Run(); err == nil {
		t.Errorf("network %s left after teardown", p.Management.Network)
	}
}

func (e *vmEnv) up(t *testing.T, names ...string) []topology.Node {
	t.Helper()
	return e.upParallel(t, 0, names...)
}

func (e *vmEnv) upParallel(t *testing.T, parallel int, names ...string) []topology.Node {
	t.Helper()
	var nodes []topology.Node
	for _, name := range names {
		n, _ := e.plan.Node(name)
		nodes = append(nodes, n)
	}
	leases := labDHCP(t, e.plan)
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	start := time.Now()
	err := e.lab.Up(ctx, nodes, vagrant.UpOptions{Lease: leaseCheck(leases), Parallel: parallel,
		Output: func(node, line string) {
			if !strings.Contains(line, "Progress:") {
				t.Logf("%5.1fs %s: %s", time.Since(start).Seconds(), node, line)
			}
		}})
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("up %v (ready, planned address on the lab NIC) in %s", names, time.Since(start))
	return nodes
}

// qemuRSS returns the resident memory of the domain's QEMU process in MiB.
func qemuRSS(t *testing.T, domain string) int {
	t.Helper()
	data, err := os.ReadFile("/run/libvirt/qemu/" + domain + ".pid")
	if err != nil {
		t.Fatalf("read qemu pid of %s: %v", domain, err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(data)) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestBaseVMOnLabBridge(t *testing.T) {
	e := setupLab(t)
	n := e.up(t, "base1")[0]
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()

	out, err := e.lab.SSH(ctx, n, "ping -c 3 -W 2 "+e.plan.Gateway.String())
	if err != nil {
		t.Fatalf("ping the bridge from %s: %v\n%s", n.Name, err, out)
	}
	t.Logf("ping %s: %s", e.plan.Gateway, lastLine(out))

	d, ok, err := e.virt.Domain(n.Object)
	if err != nil || !ok {
		t.Fatalf("domain %s: %v %v", n.Object, ok, err)
	}
	if d.Lab != e.plan.Lab {
		t.Errorf("domain %s carries the mark of lab %q, want %q (description %q)", n.Object,
			d.Lab, e.plan.Lab, d.Description)
	}
	var onBridge bool
	for _, i := range d.Interfaces {
		onBridge = onBridge || (i.Bridge == e.plan.Bridge.Name && i.MAC == n.MAC && i.Tap != "")
	}
	if !onBridge {
		t.Errorf("domain %s has no tap on %s with MAC %s: %+v", n.Object, e.plan.Bridge.Name,
			n.MAC, d.Interfaces)
	}
	rss := qemuRSS(t, n.Object)
	t.Logf("qemu RSS of %s (%d MiB guest, %s, emulator %s): %d MiB", n.Object, n.Memory, d.Type,
		d.Emulator, rss)
	if d.Type == "qemu" && rss > 600 && e.lab.Config().EmulatorPath() != "" {
		t.Errorf("TCG VM uses %d MiB RSS, want <= 600", rss)
	}
	guest, err := e.lab.SSH(ctx, n, "hostname; cat /etc/machine-id; ip -4 route; "+
		"systemctl is-system-running || true; cat /etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest:\n%s", guest)
	if strings.Contains(guest, "default via") {
		t.Error("guest has a default route")
	}
	if !strings.HasPrefix(guest, n.Name+"\n") {
		t.Errorf("guest hostname is not %s", n.Name)
	}
	if !strings.Contains(guest, "nameserver "+e.plan.Gateway.String()) ||
		!strings.Contains(guest, "search "+e.plan.Domain) {
		t.Errorf("guest resolv.conf does not follow DHCP (nameserver %s, search %s)",
			e.plan.Gateway, e.plan.Domain)
	}
}

// TestProbeAgentServes needs a box built with the agent
// (HYBRIDLAB_AGENT=path/to/probe) and checks its HTTP health endpoint
// answers on the VM's lab address from the host.
func TestProbeAgentServes(t *testing.T) {
	if os.Getenv("HYBRIDLAB_AGENT") == "" {
		t.Skip("set HYBRIDLAB_AGENT to the probe binary to test the agent in the box")
	}
	e := setupLab(t)
	n := e.up(t, "base1")[0]
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	url := "http://" + n.IP.String() + ":8080/healthz"
	var body string
	var err error
	for ctx.Err() == nil {
		if body, err = httpGet(ctx, url); err == nil {
			break
		}
	}
	if strings.TrimSpace(body) != "ok" {
		t.Fatalf("GET %s: %q, %v", url, body, err)
	}
	t.Logf("GET %s from the host: %q", url, strings.TrimSpace(body))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// guestImageScript builds a one-binary image inside the guest from its
// busybox, since no registry is reachable, and serves a page from it on a
// port published on the VM's lab address.
const guestImageScript = `set -e
rm -rf /tmp/img && mkdir -p /tmp/img/www
cp /bin/busybox /tmp/img/busybox
echo hybridlab-docker-vm > /tmp/img/www/index.html
tar -C /tmp/img -c . | docker import - hlv/busybox:1 >/dev/null
docker rm -f web >/dev/null 2>&1 || true
docker run -d --name web -p %s:8080:8080 hlv/busybox:1 /busybox httpd -f -p 8080 -h /www
`

func TestDockerVMPublishesPort(t *testing.T) {
	e := setupLab(t)
	n := e.up(t, "docker1")[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	state, err := e.lab.SSH(ctx, n, "systemctl is-active docker.service; sudo docker version "+
		"--format '{{.Server.Version}}'")
	if err != nil {
		t.Fatalf("dockerd in %s: %v\n%s", n.Name, err, state)
	}
	t.Logf("dockerd: %s", strings.Join(strings.Fields(state), " "))
	script := strings.ReplaceAll(fmt.Sprintf(guestImageScript, n.IP), "docker ", "sudo docker ")
	if out, err := e.lab.SSH(ctx, n, script); err != nil {
		t.Fatalf("run container in %s: %v\n%s", n.Name, err, out)
	}
	url := "http://" + n.IP.String() + ":8080/index.html"
	var body string
	for ctx.Err() == nil {
		if body, err = httpGet(ctx, url); err == nil {
			break
		}
	}
	if !strings.Contains(body, "hybridlab-docker-vm") {
		t.Fatalf("GET %s from the host: %q, %v", url, body, err)
	}
	t.Logf("GET %s from the host over %s: %q", url, e.plan.Bridge.Name, strings.TrimSpace(body))
}

func httpGet(ctx context.Context, url string) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		<-rctx.Done()
		return "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return string(data), err
}

// TestTwoVMsReachEachOther boots base1 and docker1 (HYBRIDLAB_PARALLEL
// VMs at a time, one per core when unset) and pings across the bridge
// both ways.
func TestTwoVMsReachEachOther(t *testing.T) {
	e := setupLab(t)
	parallel, _ := strconv.Atoi(os.Getenv("HYBRIDLAB_PARALLEL"))
	start := time.Now()
	nodes := e.upParallel(t, parallel, "base1", "docker1")
	t.Logf("two VMs up with parallel=%d (0: one per core) in %s", parallel, time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	for i, n := range nodes {
		peer := nodes[1-i]
		out, err := e.lab.SSH(ctx, n, "ping -c 3 -W 2 "+peer.IP.String())
		if err != nil {
			t.Fatalf("ping %s from %s: %v\n%s", peer.Name, n.Name, err, out)
		}
		t.Logf("%s -> %s: %s", n.Name, peer.Name, lastLine(out))
	}
}
