package policy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"hybridlab/provision/guard"
	"hybridlab/topology"
)

// Timeouts of the kernel tests.
const (
	// probeTimeout bounds one connection attempt; a dropped one takes it
	// whole, so it stays short.
	probeTimeout = 500 * time.Millisecond
	// matrixTimeout bounds how long the observed matrix may take to match
	// the expected one (ports start forwarding, neighbours resolve).
	matrixTimeout = 15 * time.Second
)

// endpoint is a node's namespace, or the host namespace holding the bridge.
type endpoint struct {
	name string
	ns   string
	ip   netip.Addr
	host bool
}

// probeKind is one service every endpoint offers: TCP and UDP echo, ping.
type probeKind struct {
	proto string
	port  int
}

func (k probeKind) String() string {
	if k.proto == topology.ProtoICMP {
		return "icmp"
	}
	return fmt.Sprintf("%s/%d", k.proto, k.port)
}

var probeKinds = []probeKind{
	{topology.ProtoTCP, 80}, {topology.ProtoTCP, 5432}, {topology.ProtoUDP, 5353},
	{topology.ProtoICMP, 0},
}

// testbed is the lab of testLab in namespaces: the host namespace with
// bridge hlybr0 and the gateway address, one namespace per node with a
// veth on the bridge, the node's planned IP and MAC, and echo listeners.
type testbed struct {
	plan *topology.Plan
	eps  []endpoint
}

func newTestbed(t *testing.T) *testbed {
	t.Helper()
	p, _ := testPlan(t, "")
	return buildTestbed(t, p, fmt.Sprintf("hly-%d-", os.Getpid()), "hly-")
}

// buildTestbed makes the lab of plan p in namespaces named prefix+NAME:
// the host namespace with every segment's bridge and gateway address (and
// ip_forward on, so it routes between segments), and one namespace per node
// with a veth (host end portPrefix+NAME) on its segment's bridge, the
// node's planned IP and MAC, a default route via its segment's gateway, and
// echo listeners. The host is an endpoint once per segment, on that
// segment's gateway: "host" on main, "host-SEGMENT" on the others.
func buildTestbed(t *testing.T, p *topology.Plan, prefix, portPrefix string) *testbed {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root for network namespaces and nftables")
	}
	for _, tool := range []string{"ip", "nft", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("kernel test: %s not installed", tool)
		}
	}
	tb := &testbed{plan: p}
	hostNS := prefix + "host"
	addNetns(t, hostNS)
	in(t, hostNS, "ip", "link", "set", "lo", "up")
	in(t, hostNS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, seg := range p.AllSegments() {
		br := seg.Bridge.Name
		in(t, hostNS, "ip", "link", "add", br, "type", "bridge", "stp_state", "0",
			"forward_delay", "0")
		in(t, hostNS, "ip", "addr", "add", seg.Bridge.Address.String(), "dev", br)
		in(t, hostNS, "ip", "link", "set", br, "up")
		name := "host"
		if seg.Name != topology.MainSegment {
			name += "-" + seg.Name
		}
		tb.eps = append(tb.eps, endpoint{name: name, ns: hostNS, ip: seg.Gateway, host: true})
	}
	for _, n := range p.Nodes {
		tb.eps = append(tb.eps, addNode(t, p, n, hostNS, prefix, portPrefix))
	}
	serve(t, hostNS, p.Gateways()...)
	for _, ep := range tb.eps {
		if !ep.host {
			serve(t, ep.ns)
		}
	}
	enter(t, hostNS)
	return tb
}

// addNode makes node n's namespace, wired to its segment's bridge in hostNS.
func addNode(t *testing.T, p *topology.Plan, n topology.Node, hostNS, prefix,
	portPrefix string,
) endpoint {
	t.Helper()
	seg := p.SegmentOf(n)
	ep := endpoint{name: n.Name, ns: prefix + n.Name, ip: n.IP}
	addNetns(t, ep.ns)
	port := portPrefix + n.Name
	in(t, hostNS, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0",
		"address", n.MAC, "netns", ep.ns)
	in(t, hostNS, "ip", "link", "set", port, "master", seg.Bridge.Name, "up")
	in(t, ep.ns, "ip", "addr", "add", netip.PrefixFrom(n.IP, seg.Subnet.Bits()).String(),
		"dev", "eth0")
	if !p.Routed() {
		in(t, ep.ns, "ip", "addr", "add", ip6(n.IP)+"/64", "dev", "eth0", "nodad")
	}
	in(t, ep.ns, "ip", "link", "set", "eth0", "up")
	in(t, ep.ns, "ip", "link", "set", "lo", "up")
	in(t, ep.ns, "ip", "route", "add", "default", "via", seg.Gateway.String())
	return ep
}

// ip6 is a node's test IPv6 address: fd00:11:: and the IPv4 address's
// last octet.
func ip6(v4 netip.Addr) string { return fmt.Sprintf("fd00:11::%d", v4.As4()[3]) }

func addNetns(t *testing.T, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func in(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// enter moves the test goroutine, for the rest of the test, onto its own
// OS thread in namespace ns; the thread is never unlocked, so the runtime
// discards it when the test ends.
func enter(t *testing.T, ns string) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { h.Close() })
	runtime.LockOSThread()
	if err := netns.Set(h); err != nil {
		t.Fatalf("enter namespace %s: %v", ns, err)
	}
}

// inNetns runs f on a thread of its own in namespace ns. Sockets keep the
// namespace they were created in, so f may hand them to other goroutines.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime discards the thread with the goroutine.
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// serve starts TCP echo on 80 and 5432 and UDP echo on 5353 in ns until
// the test ends. UDP listens on each of udpAddrs, or on any address: a
// socket on any address answers from the address of the route back, which
// is not the one asked when the host is asked on another segment's gateway.
func serve(t *testing.T, ns string, udpAddrs ...netip.Addr) {
	t.Helper()
	udp := []string{":5353"}
	if len(udpAddrs) > 0 {
		udp = nil
		for _, a := range udpAddrs {
			udp = append(udp, netip.AddrPortFrom(a, 5353).String())
		}
	}
	err := inNetns(ns, func() error {
		for _, port := range []int{80, 5432} {
			l, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
			if err != nil {
				return err
			}
			t.Cleanup(func() { l.Close() })
			go acceptEcho(l)
		}
		for _, addr := range udp {
			pc, err := net.ListenPacket("udp4", addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { pc.Close() })
			go udpEcho(pc)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
}

func acceptEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 512)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

func udpEcho(pc net.PacketConn) {
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}

// dial opens a connection from namespace ns.
func dial(ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		var err error
		c, err = net.DialTimeout(network, addr, probeTimeout)
		return err
	})
	return c, err
}

// echoes reports whether c echoes one message within probeTimeout.
func echoes(c net.Conn, msg string) bool {
	if err := c.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return false
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	n, err := c.Read(buf)
	return err == nil && string(buf[:n]) == msg
}

// reaches tries one probe from src to dst.
func reaches(src, dst endpoint, k probeKind) bool {
	if k.proto == topology.ProtoICMP {
		return exec.Command("ip", "netns", "exec", src.ns, "busybox", "ping", "-c", "1",
			"-W", "1", dst.ip.String()).Run() == nil
	}
	c, err := dial(src.ns, k.proto+"4", netip.AddrPortFrom(dst.ip, uint16(k.port)).String())
	if err != nil {
		return false
	}
	defer c.Close()
	return echoes(c, "hybridlab "+src.name)
}

// matrix is the outcome of every probe between every two endpoints, keyed
// "src -> dst kind".
type matrix map[string]bool

func key(src, dst endpoint, k probeKind) string {
	return fmt.Sprintf("%-8s -> %-8s %s", src.name, dst.name, k)
}

// observe runs every probe at once.
func (tb *testbed) observe() matrix {
	m := matrix{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	tb.each(func(src, dst endpoint, k probeKind) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := reaches(src, dst, k)
			mu.Lock()
			m[key(src, dst, k)] = ok
			mu.Unlock()
		}()
	})
	wg.Wait()
	return m
}

func (tb *testbed) each(f func(src, dst endpoint, k probeKind)) {
	for _, src := range tb.eps {
		for _, dst := range tb.eps {
			if src.name == dst.name || (src.host && dst.host) {
				continue
			}
			for _, k := range probeKinds {
				f(src, dst, k)
			}
		}
	}
}

// expect computes the matrix the policy promises, from the resolved rules
// alone: the first matching rule decides, else the default does; the
// host's own traffic is never dropped by default.
func (tb *testbed) expect(t *testing.T, pol *topology.Policies) matrix {
	t.Helper()
	rules, err := topology.ResolvePolicies(tb.plan, pol)
	if err != nil {
		t.Fatal(err)
	}
	m := matrix{}
	tb.each(func(src, dst endpoint, k probeKind) {
		m[key(src, dst, k)] = decide(rules, pol, src, dst, k)
	})
	return m
}

func decide(rules []topology.ResolvedRule, pol *topology.Policies, src, dst endpoint,
	k probeKind,
) bool {
	for _, r := range rules {
		if selects(r.From, src, false) && selects(r.To, dst, true) && carries(r, k) {
			return r.Action == topology.ActionAccept
		}
	}
	return src.host || !pol.DefaultDeny()
}

// selects reports whether s selects ep. A host endpoint's address is one of
// the gateways.
func selects(s topology.AddrSet, ep endpoint, isDst bool) bool {
	in := slices.ContainsFunc(s.Prefixes, func(p netip.Prefix) bool { return p.Contains(ep.ip) })
	if ep.host {
		// A prefix holding a gateway selects the host only as destination.
		return s.Host || (isDst && in)
	}
	return in
}

func carries(r topology.ResolvedRule, k probeKind) bool {
	switch {
	case r.Proto == topology.ProtoAny:
		return true
	case r.Proto != k.proto:
		return false
	case len(r.Ports) == 0:
		return true
	}
	return slices.ContainsFunc(r.Ports, func(p topology.PortSpec) bool {
		return p.First <= k.port && k.port <= p.Last
	})
}

// sideBySide prints expected and observed, marking differences.
func (tb *testbed) sideBySide(want, got matrix) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-34s %-8s %-8s\n", "probe", "expected", "observed")
	tb.each(func(src, dst endpoint, k probeKind) {
		kk := key(src, dst, k)
		mark := ""
		if want[kk] != got[kk] {
			mark = "  <-- differs"
		}
		fmt.Fprintf(&b, "%-34s %-8s %-8s%s\n", kk, yesNo(want[kk]), yesNo(got[kk]), mark)
	})
	return b.String()
}

func yesNo(ok bool) string {
	if ok {
		return "pass"
	}
	return "blocked"
}

// matrixIs polls until the observed matrix equals want or matrixTimeout
// passes, then fails with both side by side.
func (tb *testbed) matrixIs(t *testing.T, phase string, want matrix) {
	t.Helper()
	deadline := time.Now().Add(matrixTimeout)
	for {
		got := tb.observe()
		if equal(got, want) {
			t.Logf("%s: observed matrix equals the expected one:\n%s", phase,
				tb.sideBySide(want, got))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: observed matrix differs from the policy:\n%s", phase,
				tb.sideBySide(want, got))
		}
	}
}

func equal(a, b matrix) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (tb *testbed) ep(name string) endpoint {
	for _, e := range tb.eps {
		if e.name == name {
			return e
		}
	}
	panic("no endpoint " + name)
}

var counterValues = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// listTables is `nft list table` of both policy tables, without counter
// values, separated by a blank line as Render separates them.
func listTables(t *testing.T, ns, lab string) string {
	t.Helper()
	var out []string
	for _, fam := range []string{"inet", "bridge"} {
		out = append(out, in(t, ns, "nft", "list", "table", fam, TableName(lab)))
	}
	return counterValues.ReplaceAllString(strings.Join(out, "\n"), "counter")
}

// TestKernelRenderIsWhatTheKernelLists applies each test policy and
// compares Render's text with what nft reads back from the kernel.
func TestKernelRenderIsWhatTheKernelLists(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root for network namespaces and nftables")
	}
	ns := fmt.Sprintf("hly-%d-render", os.Getpid())
	addNetns(t, ns)
	enter(t, ns)
	for _, c := range []struct{ name, policies string }{
		{"deny", denyPolicy}, {"changed", changedPolicy}, {"allow", allowPolicy},
	} {
		p, pol := testPlan(t, c.policies)
		ensure(t, p, pol)
		want, err := Render(p, pol)
		if err != nil {
			t.Fatal(err)
		}
		if got := listTables(t, ns, p.Lab); got != want {
			t.Errorf("%s: the kernel lists\n%s\nRender says\n%s", c.name, got, want)
		}
	}
	if err := Remove("hly"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, policies string }{
		{"routed deny", routedPolicy}, {"routed changed", routedChanged},
	} {
		p, pol := routedPlan(t, c.policies)
		ensure(t, p, pol)
		want, err := Render(p, pol)
		if err != nil {
			t.Fatal(err)
		}
		if got := listTables(t, ns, p.Lab); got != want {
			t.Errorf("%s: the kernel lists\n%s\nRender says\n%s", c.name, got, want)
		}
	}
	if err := Remove("hlp"); err != nil {
		t.Fatal(err)
	}
}

func ensure(t *testing.T, p *topology.Plan, pol *topology.Policies) Result {
	t.Helper()
	res, err := Ensure(p, pol)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return res
}

func TestKernelPolicyMatrix(t *testing.T) {
	tb := newTestbed(t)
	t.Cleanup(func() { _ = Remove("hly") })

	_, none := testPlan(t, "")
	tb.matrixIs(t, "no policy", tb.expect(t, none))

	p, deny := testPlan(t, denyPolicy)
	res := ensure(t, p, deny)
	if res.Replaced || len(res.Tables) != 2 || res.Rules == 0 {
		t.Errorf("first Ensure = %+v", res)
	}
	tb.matrixIs(t, "deny by default", tb.expect(t, deny))

	counters := status(t)
	for _, name := range []string{"web-from-vms", "db-from-web", CommentDefault,
		CommentEstablished} {
		if counters[name].Packets == 0 {
			t.Errorf("counter %q is zero after the matrix: %v", name, counters)
		}
	}
	t.Logf("counters after the deny matrix: %v", counters)
}

func status(t *testing.T) map[string]RuleCounter {
	t.Helper()
	return labStatus(t, "hly")
}

// labStatus is Status of lab by rule name.
func labStatus(t *testing.T, lab string) map[string]RuleCounter {
	t.Helper()
	list, err := Status(lab)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	out := map[string]RuleCounter{}
	for _, c := range list {
		out[c.Name] = c
	}
	return out
}

// TestKernelNeighboursUnderDeny: with all IP between two nodes denied,
// ARP and IPv6 neighbour discovery still work, and IPv6 (which no rule can
// select) is dropped.
func TestKernelNeighboursUnderDeny(t *testing.T) {
	tb := newTestbed(t)
	t.Cleanup(func() { _ = Remove("hly") })
	vm1, db := tb.ep("vm1"), tb.ep("db")
	ping6 := func() bool {
		return exec.Command("ip", "netns", "exec", vm1.ns, "busybox", "ping", "-6", "-c", "1",
			"-W", "1", ip6(db.ip)).Run() == nil
	}
	deadline := time.Now().Add(matrixTimeout)
	for !ping6() {
		if time.Now().After(deadline) {
			t.Fatal("IPv6 ping between two nodes fails without a policy: test setup broken")
		}
	}
	// Only the bridge table may stop IPv6 here: br_netfilter hands it to no
	// IPv6 hook.
	in(t, tb.ep("host").ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-ip6tables=0")
	p, deny := testPlan(t, denyPolicy)
	ensure(t, p, deny)
	in(t, vm1.ns, "ip", "neigh", "flush", "dev", "eth0")
	if ping6() {
		t.Error("IPv6 ping from vm1 to db passes under default deny")
	}
	if neigh := in(t, vm1.ns, "ip", "-6", "neigh", "show", ip6(db.ip), "dev", "eth0"); !strings.
		Contains(neigh, "lladdr") {
		t.Errorf("vm1 did not resolve db's IPv6 address under deny: %q", neigh)
	}

	if reaches(vm1, db, probeKind{topology.ProtoICMP, 0}) {
		t.Fatal("vm1 pings db although the policy denies all IP between them")
	}
	arping := exec.Command("ip", "netns", "exec", vm1.ns, "busybox", "arping", "-c", "1",
		"-w", "2", "-I", "eth0", db.ip.String())
	if out, err := arping.CombinedOutput(); err != nil {
		t.Errorf("ARP from vm1 to db under default deny: %v\n%s", err, out)
	}
	if n := status(t)[CommentARP].Packets; n == 0 {
		t.Errorf("builtin:arp counted no packets")
	}
}

func TestKernelPolicyChangeKeepsEstablished(t *testing.T) {
	tb := newTestbed(t)
	host := tb.ep("host").ns
	t.Cleanup(func() { _ = Remove("hly") })
	p, deny := testPlan(t, denyPolicy)
	ensure(t, p, deny)

	vm1, web := tb.ep("vm1"), tb.ep("web")
	var conn net.Conn
	deadline := time.Now().Add(matrixTimeout)
	for {
		c, err := dial(vm1.ns, "tcp4", netip.AddrPortFrom(web.ip, 80).String())
		if err == nil && echoes(c, "before") {
			conn = c
			break
		}
		if c != nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("vm1 cannot open tcp/80 to web under the deny policy: %v", err)
		}
	}
	defer conn.Close()

	_, changed := testPlan(t, changedPolicy)
	if res := ensure(t, p, changed); !res.Replaced {
		t.Errorf("second Ensure = %+v, want Replaced", res)
	}
	if !echoes(conn, "after") {
		t.Error("the established vm1 -> web tcp/80 connection was cut by the policy change")
	}
	tb.matrixIs(t, "changed policy", tb.expect(t, changed))

	_, allow := testPlan(t, allowPolicy)
	ensure(t, p, allow)
	tb.matrixIs(t, "allow by default", tb.expect(t, allow))

	res := ensure(t, p, nil)
	if !res.Removed || len(res.Tables) != 0 {
		t.Errorf("Ensure without policies = %+v, want Removed", res)
	}
	if tables := in(t, host, "nft", "list", "tables"); strings.Contains(tables, "_pol") {
		t.Errorf("policy tables left:\n%s", tables)
	}
	if err := Remove("hly"); err != nil {
		t.Errorf("Remove of a removed policy: %v", err)
	}
	if list, err := Status("hly"); err != nil || len(list) != 0 {
		t.Errorf("Status without tables = %v, %v", list, err)
	}
	tb.matrixIs(t, "policy removed", tb.expect(t, nil))
}

func TestKernelRefusesUnfilteredBridge(t *testing.T) {
	tb := newTestbed(t)
	host := tb.ep("host").ns
	in(t, host, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
	p, deny := testPlan(t, denyPolicy)
	if _, err := Ensure(p, deny); !errors.Is(err, ErrNotFiltered) {
		t.Fatalf("Ensure with bridge-nf-call-iptables=0: %v, want ErrNotFiltered", err)
	}
	in(t, host, "ip", "link", "set", p.Bridge.Name, "type", "bridge", "nf_call_iptables", "1")
	ensure(t, p, deny)
	t.Cleanup(func() { _ = Remove("hly") })
	if reaches(tb.ep("vm1"), tb.ep("db"), probeKind{topology.ProtoTCP, 5432}) {
		t.Error("with the bridge's own nf_call_iptables on, the policy does not apply")
	}
}

// TestKernelPolicyUnderGuardAndDockerForwardDrop stacks the policy the way
// a real host has it: the egress guard (priority -10), the policy (-5),
// and Docker's FORWARD policy drop with the guard's DOCKER-USER accept (0).
func TestKernelPolicyUnderGuardAndDockerForwardDrop(t *testing.T) {
	tb := newTestbed(t)
	host := tb.ep("host").ns
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("kernel test: iptables not installed")
	}
	for _, ipt := range []string{"iptables", "ip6tables"} {
		in(t, host, ipt, "-N", "DOCKER-USER")
		in(t, host, ipt, "-A", "DOCKER-USER", "-j", "RETURN")
		in(t, host, ipt, "-A", "FORWARD", "-j", "DOCKER-USER")
		in(t, host, ipt, "-P", "FORWARD", "DROP")
	}
	if _, err := guard.Ensure(guard.SpecFromPlan(tb.plan, false)); err != nil {
		t.Fatalf("guard.Ensure: %v", err)
	}
	t.Cleanup(func() { _ = guard.Remove("hly") })
	p, deny := testPlan(t, denyPolicy)
	ensure(t, p, deny)
	t.Cleanup(func() { _ = Remove("hly") })
	tb.matrixIs(t, "deny under guard and FORWARD drop", tb.expect(t, deny))
}
