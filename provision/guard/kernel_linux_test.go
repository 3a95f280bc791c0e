package guard

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"hybridlab/provision/bridge"
)

// portReadyTimeout bounds how long a new port of an STP-off bridge may
// take to forward.
const portReadyTimeout = time.Second

// namespaces creates named network namespaces hlt-<pid>-<role> for the
// test and deletes them when it ends.
func namespaces(t *testing.T, roles ...string) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root for network namespaces and nftables")
	}
	for _, tool := range []string{"ip", "nft", "iptables", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("kernel test: %s not installed", tool)
		}
	}
	out := map[string]string{}
	for _, r := range roles {
		name := fmt.Sprintf("hlt-%d-%s", os.Getpid(), r)
		run(t, "ip", "netns", "add", name)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
		out[r] = name
	}
	return out
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

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// in runs a command in namespace ns.
func in(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// pings reports whether ns gets an echo reply from dst within a second.
func pings(ns, dst string, opts ...string) bool {
	args := append([]string{"netns", "exec", ns, "busybox", "ping"}, opts...)
	args = append(args, "-c", "1", "-W", "1", dst)
	return exec.Command("ip", args...).Run() == nil
}

// labBridge creates the lab bridge in the namespace the test has entered.
func labBridge(t *testing.T, lab, name, gw string) {
	t.Helper()
	mac, _ := net.ParseMAC("02:68:0a:4d:00:01")
	_, err := bridge.Ensure(bridge.BridgeSpec{
		Lab: lab, Name: name, MAC: mac, MTU: 1500, Address: netip.MustParsePrefix(gw),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// plug connects namespace node to the bridge in namespace host through a
// veth (host side hostIf, node side eth0) and gives the node addr.
func plug(t *testing.T, host, node, hostIf, br string, addrs ...string) {
	t.Helper()
	in(t, host, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0",
		"netns", node)
	in(t, host, "ip", "link", "set", hostIf, "master", br, "up")
	for _, a := range addrs {
		in(t, node, "ip", "addr", "add", a, "dev", "eth0", "nodad")
	}
	in(t, node, "ip", "link", "set", "eth0", "up")
	in(t, node, "ip", "link", "set", "lo", "up")
}

var counterValues = regexp.MustCompile(`counter packets \d+ bytes \d+`)

func TestKernelTableAsTheKernelListsIt(t *testing.T) {
	ns := namespaces(t, "golden")
	enter(t, ns["golden"])
	spec := SpecFromPlan(testPlan(t), false)

	res, err := Ensure(spec)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if res.Replaced || res.Rules != 11 || res.Table != "inet hybridlab_hlt" {
		t.Errorf("first Ensure = %+v", res)
	}
	for _, du := range res.DockerUser {
		if du.Chain || !strings.Contains(du.String(), "nothing") {
			t.Errorf("DOCKER-USER in a namespace without Docker: %s", du)
		}
	}
	listing := in(t, ns["golden"], "nft", "list", "table", "inet", "hybridlab_hlt")
	golden(t, "nft-list.golden", counterValues.ReplaceAllString(listing, "counter"))

	again, err := Ensure(spec)
	if err != nil || !again.Replaced || again.Rules != res.Rules {
		t.Errorf("second Ensure = %+v, %v", again, err)
	}
	if relisted := in(t, ns["golden"], "nft", "list", "table", "inet",
		"hybridlab_hlt"); relisted != listing {
		t.Errorf("second Ensure changed the table:\n%s\nwas\n%s", relisted, listing)
	}

	if labs, err := Labs(); err != nil || !slices.Equal(labs, []string{"hlt"}) {
		t.Errorf("Labs = %v, %v; want [hlt]", labs, err)
	}
	for range 2 {
		if err := Remove("hlt"); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if tables := in(t, ns["golden"], "nft", "list", "tables"); strings.Contains(tables,
		"hybridlab") {
		t.Errorf("table left after Remove: %s", tables)
	}
}

// TestKernelEgressGuard: lab node → bridge → routed host namespace → fake
// uplink → "outside" namespace.
func TestKernelEgressGuard(t *testing.T) {
	ns := namespaces(t, "host", "lab", "out")
	host := ns["host"]
	enter(t, host)
	labBridge(t, "hltg", "hltbr0", "10.77.1.1/24")
	plug(t, host, ns["lab"], "hltl0", "hltbr0", "10.77.1.10/24")
	in(t, ns["lab"], "ip", "route", "add", "default", "via", "10.77.1.1")
	in(t, host, "ip", "link", "add", "hltu0", "type", "veth", "peer", "name", "eth0",
		"netns", ns["out"])
	in(t, host, "ip", "addr", "add", "10.77.200.1/24", "dev", "hltu0")
	in(t, host, "ip", "link", "set", "hltu0", "up")
	in(t, ns["out"], "ip", "addr", "add", "10.77.200.2/24", "dev", "eth0")
	in(t, ns["out"], "ip", "link", "set", "eth0", "up")
	in(t, ns["out"], "ip", "route", "add", "10.77.1.0/24", "via", "10.77.200.1")
	in(t, host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if err := bridge.WaitPortsForwarding("hltbr0", portReadyTimeout); err != nil {
		t.Fatal(err)
	}
	if !pings(ns["lab"], "10.77.200.2") {
		t.Fatal("without the guard the lab node cannot reach the fake outside: test setup broken")
	}

	spec := Spec{Lab: "hltg", Bridges: []string{"hltbr0"},
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.77.1.0/24")}}
	if _, err := Ensure(spec); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Cleanup(func() { _ = Remove("hltg") })

	if pings(ns["lab"], "10.77.200.2") {
		t.Error("lab node reached the fake outside through the guard")
	}
	fwd, outp := counted(t, "hltg")
	if fwd == 0 || outp != 0 {
		t.Errorf("after the lab's ping: forward drops %d (want > 0), output drops %d (want 0)",
			fwd, outp)
	}
	if !pings(ns["lab"], "10.77.1.1") {
		t.Error("lab node cannot reach its gateway")
	}
	if !pings(host, "10.77.200.2") {
		t.Error("the host's own traffic to the uplink was dropped")
	}
	if _, outp = counted(t, "hltg"); outp != 0 {
		t.Errorf("the host's own ping hit the output drop %d times", outp)
	}
	if pings(host, "10.77.200.2", "-I", "10.77.1.1") {
		t.Error("the host sent a lab-sourced packet out of the uplink")
	}
	if _, outp = counted(t, "hltg"); outp == 0 {
		t.Error("lab-sourced host packet not counted by egress_output")
	}

	// The outside knows no route to the lab, like a real uplink: only the guard's own
	// masquerade under AllowEgress lets replies come back.
	in(t, ns["out"], "ip", "route", "del", "10.77.1.0/24")
	spec.AllowEgress = true
	if _, err := Ensure(spec); err != nil {
		t.Fatalf("Ensure with AllowEgress: %v", err)
	}
	if !pings(ns["lab"], "10.77.200.2") {
		t.Error("with AllowEgress the lab node still cannot reach the fake outside")
	}
	if !pings(ns["lab"], "10.77.1.1") {
		t.Error("with AllowEgress the lab node cannot reach its gateway (masqueraded?)")
	}
	st, err := Status("hltg")
	if err != nil {
		t.Fatal(err)
	}
	if st.Enforcing || st.Dropped() == 0 {
		t.Errorf("with AllowEgress: enforcing %v, counted %d; want false, > 0",
			st.Enforcing, st.Dropped())
	}
	t.Logf("status: %s", st.Explanation)
}

// counted sums the guard's counting rules per chain.
func counted(t *testing.T, lab string) (forward, output uint64) {
	t.Helper()
	st, err := Status(lab)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Rules {
		if !r.Counted {
			continue
		}
		if r.Chain == ChainForward {
			forward += r.Packets
		} else {
			output += r.Packets
		}
	}
	return forward, output
}

// TestKernelDockerUserAcceptsBridgedTraffic reproduces faults B01/B02
// (and B04 for IPv6) in a namespace: Docker's FORWARD policy drop plus
// br_netfilter drops frames switched between two lab ports, until Ensure
// puts the lab's accept into DOCKER-USER.
func TestKernelDockerUserAcceptsBridgedTraffic(t *testing.T) {
	ns := namespaces(t, "dhost", "a", "b")
	host := ns["dhost"]
	enter(t, host)
	labBridge(t, "hltd", "hltbr1", "10.77.2.1/24")
	plug(t, host, ns["a"], "hlta0", "hltbr1", "10.77.2.11/24", "fd00:77:2::11/64")
	plug(t, host, ns["b"], "hltb0", "hltbr1", "10.77.2.12/24", "fd00:77:2::12/64")
	if err := bridge.WaitPortsForwarding("hltbr1", portReadyTimeout); err != nil {
		t.Fatal(err)
	}
	// What dockerd does on start, per family (the sysctls are per
	// namespace on this kernel).
	in(t, host, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1",
		"net.bridge.bridge-nf-call-ip6tables=1")
	for _, ipt := range []string{"iptables", "ip6tables"} {
		in(t, host, ipt, "-N", "DOCKER-USER")
		in(t, host, ipt, "-A", "DOCKER-USER", "-j", "RETURN")
		in(t, host, ipt, "-A", "FORWARD", "-j", "DOCKER-USER")
		in(t, host, ipt, "-P", "FORWARD", "DROP")
	}

	if pings(ns["a"], "10.77.2.12") || pings(ns["a"], "fd00:77:2::12") {
		t.Fatal("bridged traffic passes FORWARD policy DROP: fault not reproduced")
	}
	st, err := Status("hltd")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Explanation, "has no lab rule and FORWARD drops") {
		t.Errorf("explanation without the fix: %s", st.Explanation)
	}

	spec := Spec{Lab: "hltd", Bridges: []string{"hltbr1"},
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.77.2.0/24")}}
	for range 2 {
		res, err := Ensure(spec)
		if err != nil {
			t.Fatalf("Ensure: %v", err)
		}
		for _, du := range res.DockerUser {
			if !du.Chain || du.Rules != 1 {
				t.Errorf("Ensure in %s: %s", du.Family, du)
			}
		}
	}
	t.Cleanup(func() { _ = Remove("hltd") })

	want := `-A DOCKER-USER -i hltbr1 -o hltbr1 -m comment --comment "hybridlab:hltd" -j ACCEPT`
	for _, ipt := range []string{"iptables", "ip6tables"} {
		rules := in(t, host, ipt, "-S", "DOCKER-USER")
		if lines := strings.Split(rules, "\n"); len(lines) < 3 || lines[1] != want ||
			strings.Count(rules, "hybridlab") != 1 {
			t.Errorf("%s -S DOCKER-USER after two Ensures:\n%s\nwant first rule %s",
				ipt, rules, want)
		}
		if saved := in(t, host, ipt+"-save"); !strings.Contains(saved, want) {
			t.Errorf("%s-save lacks the lab rule:\n%s", ipt, saved)
		}
	}

	if !pings(ns["a"], "10.77.2.12") {
		t.Error("IPv4 between two lab ports still dropped with the DOCKER-USER accept")
	}
	if !pings(ns["a"], "fd00:77:2::12") {
		t.Error("IPv6 between two lab ports still dropped with the DOCKER-USER accept")
	}
	if st, err = Status("hltd"); err != nil {
		t.Fatal(err)
	}
	for _, du := range st.DockerUser {
		if len(du.Rules) != 1 || du.Rules[0].Packets == 0 || du.ForwardPolicy != "drop" {
			t.Errorf("%s DOCKER-USER status %+v: want one rule with packets, policy drop",
				du.Family, du)
		}
	}
	t.Logf("status: %s", st.Explanation)

	if labs, err := Labs(); err != nil || !slices.Equal(labs, []string{"hltd"}) {
		t.Errorf("Labs = %v, %v; want [hltd]", labs, err)
	}
	if err := Remove("hltd"); err != nil {
		t.Fatal(err)
	}
	if labs, err := Labs(); err != nil || len(labs) != 0 {
		t.Errorf("Labs after Remove = %v, %v; want none", labs, err)
	}
	if rules := in(t, host, "iptables", "-S", "DOCKER-USER"); strings.Contains(rules,
		"hybridlab") || !strings.Contains(rules, "-A DOCKER-USER -j RETURN") {
		t.Errorf("after Remove, DOCKER-USER is\n%s", rules)
	}
	if pings(ns["a"], "10.77.2.12") {
		t.Error("bridged traffic still passes after Remove")
	}
}

// TestKernelDockerUserAcceptsRoutedTraffic: Docker isolates its bridge
// networks from each other (DOCKER-ISOLATION-STAGE-1/2, FORWARD policy
// drop), which blocks the host's routing between two lab segments until
// Ensure puts the lab's accepts for both directions into DOCKER-USER. The
// egress guard lets routed lab traffic through: it leaves by a lab bridge.
func TestKernelDockerUserAcceptsRoutedTraffic(t *testing.T) {
	ns := namespaces(t, "rhost", "a", "b")
	host := ns["rhost"]
	enter(t, host)
	labBridge(t, "hltr", "hltr1", "10.77.3.1/24")
	labBridge(t, "hltr", "hltr2", "10.77.4.1/24")
	plug(t, host, ns["a"], "hltra0", "hltr1", "10.77.3.11/24")
	plug(t, host, ns["b"], "hltrb0", "hltr2", "10.77.4.12/24")
	in(t, ns["a"], "ip", "route", "add", "default", "via", "10.77.3.1")
	in(t, ns["b"], "ip", "route", "add", "default", "via", "10.77.4.1")
	for _, br := range []string{"hltr1", "hltr2"} {
		if err := bridge.WaitPortsForwarding(br, portReadyTimeout); err != nil {
			t.Fatal(err)
		}
	}
	in(t, host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// Docker's rules for two bridge networks, as `iptables -S` shows them.
	for _, args := range [][]string{
		{"-N", "DOCKER-USER"}, {"-A", "DOCKER-USER", "-j", "RETURN"},
		{"-N", "DOCKER-ISOLATION-STAGE-1"}, {"-N", "DOCKER-ISOLATION-STAGE-2"},
		{"-A", "FORWARD", "-j", "DOCKER-USER"},
		{"-A", "FORWARD", "-j", "DOCKER-ISOLATION-STAGE-1"},
		{"-A", "FORWARD", "-i", "hltr1", "!", "-o", "hltr1", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "hltr2", "!", "-o", "hltr2", "-j", "ACCEPT"},
		{"-A", "DOCKER-ISOLATION-STAGE-1", "-i", "hltr1", "!", "-o", "hltr1", "-j",
			"DOCKER-ISOLATION-STAGE-2"},
		{"-A", "DOCKER-ISOLATION-STAGE-1", "-i", "hltr2", "!", "-o", "hltr2", "-j",
			"DOCKER-ISOLATION-STAGE-2"},
		{"-A", "DOCKER-ISOLATION-STAGE-2", "-o", "hltr1", "-j", "DROP"},
		{"-A", "DOCKER-ISOLATION-STAGE-2", "-o", "hltr2", "-j", "DROP"},
		{"-P", "FORWARD", "DROP"},
	} {
		in(t, host, append([]string{"iptables"}, args...)...)
	}
	if pings(ns["a"], "10.77.4.12") {
		t.Fatal("routed traffic passes Docker's isolation chains: fault not reproduced")
	}

	spec := Spec{Lab: "hltr", Bridges: []string{"hltr1", "hltr2"},
		Routed: []string{"hltr1", "hltr2"},
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.77.3.0/24"),
			netip.MustParsePrefix("10.77.4.0/24")}}
	res, err := Ensure(spec)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Cleanup(func() { _ = Remove("hltr") })
	for _, du := range res.DockerUser {
		if du.Family == "ip" && du.Rules != 4 {
			t.Errorf("Ensure in ip: %s, want 4 rules (2 bridges, 2 routed pairs)", du)
		}
	}
	rules := in(t, host, "iptables", "-S", "DOCKER-USER")
	for _, want := range []string{
		`-A DOCKER-USER -i hltr1 -o hltr2 -m comment --comment "hybridlab:hltr" -j ACCEPT`,
		`-A DOCKER-USER -i hltr2 -o hltr1 -m comment --comment "hybridlab:hltr" -j ACCEPT`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("iptables -S DOCKER-USER lacks %s:\n%s", want, rules)
		}
	}
	if !pings(ns["a"], "10.77.4.12") || !pings(ns["b"], "10.77.3.11") {
		t.Error("routed traffic between the lab segments still dropped with the accepts")
	}
	if fwd, _ := counted(t, "hltr"); fwd != 0 {
		t.Errorf("the egress guard counted %d routed lab packets as egress", fwd)
	}
	if err := Remove("hltr"); err != nil {
		t.Fatal(err)
	}
	if pings(ns["a"], "10.77.4.12") {
		t.Error("routed traffic still passes after Remove")
	}
}
