package doctor

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"hybridlab/topology"
)

// Kernel tests break one thing inside network namespaces named hld-*, run
// Collect there, expect the finding, run the command the finding's Fix
// names, and expect it gone. iptables, nftables, links, sockets and the
// br_netfilter sysctls are all per namespace on this kernel, so the host
// is not touched.

// pingDeadline bounds how long a fixed path may take to pass traffic.
const pingDeadline = 5 * time.Second

var nsCount atomic.Int32

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create network namespaces, bridges and rules")
	}
	for _, tool := range []string{"ip", "nft", "iptables", "ip6tables", "sysctl", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("kernel test: %s is missing: %v", tool, err)
		}
	}
}

// labNS is a named network namespace that a test owns.
type labNS struct {
	t    *testing.T
	name string
}

func newNS(t *testing.T) *labNS {
	t.Helper()
	name := fmt.Sprintf("hld-%d-%d", os.Getpid(), nsCount.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return &labNS{t: t, name: name}
}

// sh runs a shell command inside the namespace and fails the test on error.
func (n *labNS) sh(cmd string) string {
	n.t.Helper()
	out, err := n.try(cmd)
	if err != nil {
		n.t.Fatalf("in %s: %s: %v: %s", n.name, cmd, err, out)
	}
	return out
}

func (n *labNS) try(cmd string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", n.name, "sh", "-c", cmd).CombinedOutput()
	return string(out), err
}

// do runs fn on a locked OS thread inside the namespace.
func (n *labNS) do(fn func()) {
	n.t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(n.name)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		fn()
		// A thread that cannot return to its namespace stays locked and
		// dies with the goroutine.
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		n.t.Fatalf("enter %s: %v", n.name, err)
	}
}

func (n *labNS) collect(plan *topology.Plan, opts Options) *HostState {
	n.t.Helper()
	var s *HostState
	var err error
	n.do(func() { s, err = Collect(context.Background(), plan, opts) })
	if err != nil {
		n.t.Fatalf("collect in %s: %v", n.name, err)
	}
	return s
}

// findings collects in the namespace and runs one check. Sources the test
// needs must have been read.
func (n *labNS) findings(plan *topology.Plan, opts Options, id string) []Finding {
	n.t.Helper()
	s := n.collect(plan, opts)
	for _, e := range s.Errors {
		n.t.Fatalf("source %s could not be read: %s", e.Source, e.Err)
	}
	return checkByID(n.t, id).Run(plan, s)
}

// kernelOpts keeps host-wide sources (Docker, libvirt, the real state
// directory) out of a namespace test.
func kernelOpts(t *testing.T) Options {
	return Options{NoDocker: true, NoLibvirt: true, StateDir: t.TempDir(), Phase: PhaseRunning}
}

// labBridge creates the plan's bridge the way `up` does: fixed MAC, STP
// off, the gateway address.
func labBridge(n *labNS, plan *topology.Plan) {
	n.sh(fmt.Sprintf("ip link set lo up && ip link add %s address %s type bridge stp_state 0 "+
		"forward_delay 0 && ip addr add %s dev %s && ip link set %s up", plan.Bridge.Name,
		plan.Bridge.MAC, plan.Bridge.Address, plan.Bridge.Name, plan.Bridge.Name))
}

// fixCommand extracts the shell command from a finding's Fix text.
func fixCommand(t *testing.T, f Finding) string {
	t.Helper()
	fix := f.Fix
	for _, prefix := range []string{"remove the owner: ", "by hand: ", "(or by hand: "} {
		if _, after, ok := strings.Cut(fix, prefix); ok {
			fix = strings.TrimSuffix(after, ")")
		}
	}
	if before, _, ok := strings.Cut(fix, " (or "); ok {
		fix = before
	}
	if strings.Contains(fix, "go run ./setup") || fix == "" {
		t.Fatalf("fix of %s is not a host command: %q", f.ID, f.Fix)
	}
	return fix
}

// fixUntilClear runs the Fix of the first finding until the check reports
// nothing, and fails after rounds fixes.
func fixUntilClear(n *labNS, plan *topology.Plan, opts Options, id string, rounds int) {
	n.t.Helper()
	for i := 0; i <= rounds; i++ {
		got := n.findings(plan, opts, id)
		if len(got) == 0 {
			return
		}
		if i == rounds {
			n.t.Fatalf("%s still reported after %d fixes:\n%s", id, rounds, dump(got))
		}
		cmd := fixCommand(n.t, got[0])
		n.t.Logf("fix %s: %s", id, cmd)
		n.sh(cmd)
	}
}

func expectOne(t *testing.T, got []Finding, sev Severity, object string) Finding {
	t.Helper()
	for _, f := range got {
		if f.Severity == sev && f.Object == object {
			return f
		}
	}
	t.Fatalf("no %s finding for %q in:\n%s", sev, object, dump(got))
	return Finding{}
}

// peer puts a namespace with address ip on the lab bridge of n.
func peer(t *testing.T, n *labNS, plan *topology.Plan, port, ip string) *labNS {
	p := newNS(t)
	n.sh(fmt.Sprintf("ip link add %s type veth peer name eth0 netns %s && "+
		"ip link set %s master %s up", port, p.name, port, plan.Bridge.Name))
	p.sh(fmt.Sprintf("ip link set lo up && ip addr add %s/%d dev eth0 && ip link set eth0 up",
		ip, plan.Subnet.Bits()))
	return p
}

// pings reports whether from reaches ip within the deadline.
func pings(from *labNS, ip string, deadline time.Duration) bool {
	end := time.Now().Add(deadline)
	for {
		if _, err := from.try("busybox ping -c 1 -W 1 " + ip); err == nil {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

func TestKernelForwardDrop(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	a := peer(t, n, plan, "hldpa", "10.0.6.11")
	peer(t, n, plan, "hldpb", "10.0.6.12")
	if v := n.sh("sysctl -n net.bridge.bridge-nf-call-iptables"); strings.TrimSpace(v) != "1" {
		t.Fatalf("bridge-nf-call-iptables in a new netns = %q, want 1", v)
	}
	if !pings(a, "10.0.6.12", pingDeadline) {
		t.Fatal("peers on the lab bridge cannot ping before any rule is set")
	}
	n.sh("for t in iptables ip6tables; do $t -P FORWARD DROP && $t -N DOCKER-USER && " +
		"$t -A FORWARD -j DOCKER-USER && $t -A DOCKER-USER -j RETURN; done")
	if pings(a, "10.0.6.12", time.Second) {
		t.Fatal("ping crossed the bridge despite FORWARD DROP and bridge-nf-call-iptables=1")
	}

	opts := kernelOpts(t)
	got := n.findings(plan, opts, IDForwardDrop)
	v4 := expectOne(t, got, Error, "iptables FORWARD / hld0")
	expectOne(t, got, Error, "ip6tables FORWARD / hld0")
	if v4.Fix != "iptables -I DOCKER-USER -i hld0 -o hld0 -j ACCEPT" {
		t.Fatalf("v4 fix = %q", v4.Fix)
	}

	n.sh(fixCommand(t, v4))
	if !pings(a, "10.0.6.12", pingDeadline) {
		t.Fatal("ping still fails after the v4 fix")
	}
	got = n.findings(plan, opts, IDForwardDrop)
	if len(got) != 1 || got[0].Object != "ip6tables FORWARD / hld0" {
		t.Fatalf("after the v4 fix want only the v6 finding, got:\n%s", dump(got))
	}
	fixUntilClear(n, plan, opts, IDForwardDrop, 1)
}

func TestKernelSTPDelay(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	n.sh("ip link set hld0 type bridge stp_state 1 forward_delay 1500")
	opts := kernelOpts(t)

	br, ok := n.collect(plan, opts).Bridge("hld0")
	if !ok || br.STP != 1 || br.ForwardDelay != 1500 || br.MAC != plan.Bridge.MAC {
		t.Fatalf("collected bridge %+v, want stp 1, forward_delay 1500, mac %s", br,
			plan.Bridge.MAC)
	}
	expectOne(t, n.findings(plan, opts, IDSTPDelay), Warn, "bridge hld0")
	fixUntilClear(n, plan, opts, IDSTPDelay, 1)
}

func TestKernelPortMTU(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	n.sh("ip link add hldp0 mtu 1400 type veth peer name hldp0b mtu 1400 && " +
		"ip link set hldp0 master hld0 up")
	opts := kernelOpts(t)

	got := n.findings(plan, opts, IDMTUMismatch)
	expectOne(t, got, Error, "port hldp0 of hld0")
	fixUntilClear(n, plan, opts, IDMTUMismatch, 2)
}

func TestKernelSubnetOverlap(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	n.sh("ip link add hldx1 type veth peer name hldx1b && ip addr add 10.0.6.77/24 dev hldx1 && " +
		"ip link set hldx1 up")
	opts := kernelOpts(t)

	got := n.findings(plan, opts, IDSubnetOverlap)
	if len(got) != 1 {
		t.Fatalf("want one finding (not the lab's own bridge), got:\n%s", dump(got))
	}
	expectOne(t, got, Error, "address 10.0.6.77/24 on hldx1")
	fixUntilClear(n, plan, opts, IDSubnetOverlap, 1)
}

func TestKernelNFTForeignDrop(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	n.sh(`nft add table inet hldfw && ` +
		`nft add chain inet hldfw hldfwd '{ type filter hook forward priority 0; policy drop; }' && ` +
		`nft add chain inet hldfw hldin '{ type filter hook input priority 0; }' && ` +
		`nft add rule inet hldfw hldin iifname "hld0" udp dport 67 counter drop && ` +
		`nft add table bridge hldl2 && ` +
		`nft add chain bridge hldl2 hldl2f '{ type filter hook forward priority 0; }' && ` +
		`nft add rule bridge hldl2 hldl2f counter drop && ` +
		`nft add table inet hybridlab_hld && ` +
		`nft add chain inet hybridlab_hld guard '{ type filter hook forward priority -200; }' && ` +
		`nft add rule inet hybridlab_hld guard oifname "eth9" ip daddr 10.0.0.0/8 drop`)
	opts := kernelOpts(t)

	got := n.findings(plan, opts, IDNFTForeignDrop)
	if len(got) != 3 {
		t.Fatalf("want 3 findings (not the lab's own guard), got:\n%s", dump(got))
	}
	expectOne(t, got, Error, "nft inet hldfw hldfwd")
	in := expectOne(t, got, Error, "nft inet hldfw hldin")
	if !strings.Contains(in.Evidence, "drops on interface hld0") {
		t.Fatalf("input evidence %q does not name the bridge", in.Evidence)
	}
	l2 := expectOne(t, got, Error, "nft bridge hldl2 hldl2f")
	if !strings.Contains(l2.Evidence, "drops every packet") {
		t.Fatalf("bridge evidence %q", l2.Evidence)
	}
	fixUntilClear(n, plan, opts, IDNFTForeignDrop, 3)
}

func TestKernelDNSPortTaken(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	var udp net.PacketConn
	var tcp net.Listener
	var err1, err2 error
	n.do(func() {
		udp, err1 = net.ListenPacket("udp4", "10.0.6.1:53")
		tcp, err2 = net.Listen("tcp4", "0.0.0.0:53")
	})
	if err1 != nil || err2 != nil {
		t.Fatalf("listen in %s: %v, %v", n.name, err1, err2)
	}
	defer udp.Close()
	defer tcp.Close()
	opts := kernelOpts(t)

	got := n.findings(plan, opts, IDDNSPortTaken)
	self := filepath.Base(os.Args[0])
	if len(self) > 15 {
		self = self[:15]
	}
	who := fmt.Sprintf("%s (pid %d)", self, os.Getpid())
	if len(got) != 2 || got[0].Object != who || got[1].Object != who {
		t.Fatalf("want two findings naming %s, got:\n%s", who, dump(got))
	}
	if !strings.Contains(got[0].Fix, "kill "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("fix %q does not name the pid", got[0].Fix)
	}

	// The fix is to stop the listener; here the listener is this test.
	udp.Close()
	tcp.Close()
	if got := n.findings(plan, opts, IDDNSPortTaken); len(got) != 0 {
		t.Fatalf("still reported after closing the sockets:\n%s", dump(got))
	}
}

func TestKernelIPv6Disabled(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	n.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
	opts := kernelOpts(t)
	opts.WantIPv6 = true

	expectOne(t, n.findings(plan, opts, IDIPv6Disabled), Error, "host IPv6")
	fixUntilClear(n, plan, opts, IDIPv6Disabled, 1)
}

func TestKernelLeftovers(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	n.sh("ip link add hld0 type bridge && ip link set hld0 alias hybridlab:hld && " +
		"nft add table inet hybridlab_hld")
	opts := kernelOpts(t)
	opts.Phase = PhaseBefore
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(opts.StateDir, "hld", "dnsmasq.pid")
	if err := os.MkdirAll(filepath.Dir(pidFile), 0o755); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(dead.ProcessState.Pid())
	if err := os.WriteFile(pidFile, []byte(pid+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	f := expectOne(t, n.findings(plan, opts, IDLeftovers), Warn, "lab hld")
	for _, s := range []string{"link hld0", "nft table inet hybridlab_hld", pidFile} {
		if !strings.Contains(f.Evidence, s) {
			t.Errorf("evidence %q does not name %s", f.Evidence, s)
		}
	}
	fixUntilClear(n, plan, opts, IDLeftovers, 1)
}

func TestKernelIptablesMixed(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("iptables-legacy"); err != nil {
		t.Skip("iptables-legacy is not installed, so legacy rules cannot exist")
	}
	plan := testPlan(t)
	n := newNS(t)
	n.sh("iptables-legacy -A FORWARD -s 10.0.6.0/24 -j DROP && nft add table inet hldx")
	opts := kernelOpts(t)

	f := expectOne(t, n.findings(plan, opts, IDIptablesMixed), Warn, "iptables-legacy")
	if !strings.Contains(f.Evidence, "-t filter -A FORWARD -s 10.0.6.0/24 -j DROP") {
		t.Fatalf("evidence %q does not show the legacy rule", f.Evidence)
	}
	n.sh("cd " + t.TempDir() + " && " + fixCommand(t, f))
	if got := n.findings(plan, opts, IDIptablesMixed); len(got) != 0 {
		t.Fatalf("still reported after the fix:\n%s", dump(got))
	}
	if out := n.sh("iptables -S FORWARD"); !strings.Contains(out, "-s 10.0.6.0/24") {
		t.Fatalf("the fix lost the rule instead of moving it to nftables:\n%s", out)
	}
}

func TestKernelBridgeChanged(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	opts := kernelOpts(t)
	br, ok := n.collect(plan, opts).Bridge("hld0")
	if !ok || len(br.Addrs) != 1 || br.Addrs[0] != plan.Bridge.Address {
		t.Fatalf("baseline bridge %+v lacks %s", br, plan.Bridge.Address)
	}
	opts.Baseline = &br
	if got := n.findings(plan, opts, IDBridgeChanged); len(got) != 0 {
		t.Fatalf("unchanged bridge reported:\n%s", dump(got))
	}

	n.sh("ip addr flush dev hld0 && ip link set hld0 address 02:42:ac:11:00:02 && " +
		"ip link set hld0 type bridge stp_state 1")
	f := expectOne(t, n.findings(plan, opts, IDBridgeChanged), Error, "bridge hld0")
	for _, s := range []string{"address 10.0.6.1/24 missing", "MAC", "stp_state"} {
		if !strings.Contains(f.Evidence, s) {
			t.Errorf("evidence %q lacks %q", f.Evidence, s)
		}
	}
	fixUntilClear(n, plan, opts, IDBridgeChanged, 1)
}

// TestKernelPerBridgeNFCall checks the bridge's own nf_call_iptables switch
// alone sends its frames through FORWARD, and that the doctor sees it.
func TestKernelPerBridgeNFCall(t *testing.T) {
	requireRoot(t)
	plan := testPlan(t)
	n := newNS(t)
	labBridge(n, plan)
	a := peer(t, n, plan, "hldpa", "10.0.6.11")
	peer(t, n, plan, "hldpb", "10.0.6.12")
	n.sh("sysctl -qw net.bridge.bridge-nf-call-iptables=0 && " +
		"ip link set hld0 type bridge nf_call_iptables 1 && iptables -P FORWARD DROP")
	if pings(a, "10.0.6.12", time.Second) {
		t.Fatal("ping crossed the bridge with nf_call_iptables=1 on it and FORWARD DROP")
	}
	opts := kernelOpts(t)

	s := n.collect(plan, opts)
	if br, _ := s.Bridge("hld0"); br.NFCallIptables != 1 || s.BrNF.CallIptables != 0 {
		t.Fatalf("collected nf_call %d (bridge) / %d (global), want 1 / 0", br.NFCallIptables,
			s.BrNF.CallIptables)
	}
	f := expectOne(t, checkForwardDrop(plan, s), Error, "iptables FORWARD / hld0")
	if f.Fix != "iptables -I FORWARD -i hld0 -o hld0 -j ACCEPT" {
		t.Fatalf("fix = %q", f.Fix)
	}
	n.sh(f.Fix)
	if !pings(a, "10.0.6.12", pingDeadline) {
		t.Fatal("ping still fails after the fix")
	}
	fixUntilClear(n, plan, opts, IDForwardDrop, 0)
}

// TestKernelRouted builds a routed lab of two bridges in a namespace, a
// peer on each with its segment's gateway as default route, and breaks and
// fixes the three things routing between segments needs: ip_forward, the
// DOCKER-USER accepts for both directions, and no masquerade between lab
// subnets.
func TestKernelRouted(t *testing.T) {
	requireRoot(t)
	plan := routedPlan(t)
	n := newNS(t)
	n.sh("ip link set lo up")
	for _, seg := range plan.AllSegments() {
		labBridge(n, plan.View(seg.Name))
	}
	a := peer(t, n, plan.View("main"), "hldpa", "10.0.6.20")
	b := peer(t, n, plan.View("edge"), "hldpb", "10.0.7.20")
	a.sh("ip route add default via 10.0.6.1")
	b.sh("ip route add default via 10.0.7.1")
	opts := kernelOpts(t)

	n.sh("sysctl -qw net.ipv4.ip_forward=0")
	if pings(a, "10.0.7.20", time.Second) {
		t.Fatal("ping crossed segments with ip_forward=0")
	}
	expectOne(t, n.findings(plan, opts, IDIPForward), Error, "net.ipv4.ip_forward")
	fixUntilClear(n, plan, opts, IDIPForward, 1)
	if !pings(a, "10.0.7.20", pingDeadline) {
		t.Fatal("ping between segments fails after the ip_forward fix")
	}

	n.sh("iptables -P FORWARD DROP && iptables -N DOCKER-USER && " +
		"iptables -A FORWARD -j DOCKER-USER && iptables -A DOCKER-USER -j RETURN")
	if pings(a, "10.0.7.20", time.Second) {
		t.Fatal("ping crossed segments despite FORWARD DROP")
	}
	got := n.findings(plan, opts, IDSegmentForward)
	expectOne(t, got, Error, "iptables DOCKER-USER / hld0 -> hld1")
	expectOne(t, got, Error, "iptables DOCKER-USER / hld1 -> hld0")
	fixUntilClear(n, plan, opts, IDSegmentForward, 2)
	if !pings(a, "10.0.7.20", pingDeadline) {
		t.Fatal("ping between segments fails after the DOCKER-USER fixes")
	}

	n.sh("iptables -t nat -A POSTROUTING -s 10.0.6.0/24 ! -o hld0 -j MASQUERADE")
	expectOne(t, n.findings(plan, opts, IDSegmentSNAT), Error,
		"iptables nat POSTROUTING MASQUERADE of 10.0.6.0/24")
	fixUntilClear(n, plan, opts, IDSegmentSNAT, 1)
	if !pings(a, "10.0.7.20", pingDeadline) {
		t.Fatal("ping between segments fails after the masquerade exception")
	}
}
