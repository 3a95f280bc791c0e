package dnsmasq

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// Named network namespaces of the root test: the server side holds br-hlc
// and dnsmasq, the client side a DHCP client on a veth into br-hlc.
const (
	serverNS = "hlc-dns"
	clientNS = "hlc-dhc"
	// dnsTimeout bounds waiting for dnsmasq to pick up a hosts file.
	dnsTimeout = 5 * time.Second
	// dhcpTimeout bounds one DHCP exchange.
	dhcpTimeout = 30 * time.Second
)

var gw = netip.MustParseAddr("10.0.5.1")

// enterLabNS locks the test goroutine to its thread and moves that thread
// into a fresh named netns holding br-hlc with 10.0.5.1/24. Processes
// started from this goroutine (dnsmasq) and sockets it opens live there.
func enterLabNS(t *testing.T) {
	t.Helper()
	enterNS(t, serverNS, bridgeAddr{"br-hlc", "10.0.5.1/24"})
}

// bridgeAddr is a bridge a test makes and the host address on it.
type bridgeAddr struct{ name, cidr string }

// enterNS locks the test goroutine to its thread and moves that thread into
// a fresh named netns name holding the bridges; cleanup deletes the netns
// and with it the bridges.
func enterNS(t *testing.T, name string, bridges ...bridgeAddr) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (creates network namespaces and runs dnsmasq)")
	}
	if _, err := exec.LookPath(Binary); err != nil {
		t.Skipf("no dnsmasq binary: %v (apt-get install dnsmasq-base)", err)
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	netns.DeleteNamed(name)
	ns, err := netns.NewNamed(name)
	if err != nil {
		netns.Set(orig)
		t.Fatalf("ip netns add %s: %v", name, err)
	}
	t.Cleanup(func() {
		netns.Set(orig)
		ns.Close()
		orig.Close()
		netns.DeleteNamed(name)
		runtime.UnlockOSThread()
	})
	lo, _ := netlink.LinkByName("lo")
	netlink.LinkSetUp(lo)
	for _, b := range bridges {
		makeBridge(t, name, b)
	}
}

func makeBridge(t *testing.T, ns string, b bridgeAddr) {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = b.name
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("ip link add %s type bridge: %v", b.name, err)
	}
	addr, err := netlink.ParseAddr(b.cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(br, addr); err != nil {
		t.Fatalf("ip addr add %s dev %s: %v", b.cidr, b.name, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatalf("ip link set %s up: %v", b.name, err)
	}
	// Every query goes to a gateway; make sure it is local to this netns
	// so nothing can ever be routed off the host.
	routes, err := netlink.RouteGet(addr.IP)
	if err != nil || len(routes) == 0 || routes[0].Type != unix.RTN_LOCAL {
		t.Fatalf("%s is not local in netns %s: %v %v", addr.IP, ns, routes, err)
	}
}

// stateDir is a temporary state directory that dnsmasq's unprivileged
// user can enter, like /var/lib/hybridlab/LAB.
func stateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startDnsmasq(t *testing.T, yaml, stateDir string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Ensure(ctx, testPlan(t, yaml), stateDir)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return res
}

func query(t *testing.T, name string, qtype dnsmessage.Type) Answer {
	t.Helper()
	return queryAt(t, gw, name, qtype)
}

func queryAt(t *testing.T, server netip.Addr, name string, qtype dnsmessage.Type) Answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	a, err := Query(ctx, server, name, qtype)
	if err != nil {
		t.Fatalf("dig @%s %s %s: %v", server, name, qtype, err)
	}
	return a
}

func wantA(t *testing.T, name, ip string) {
	t.Helper()
	wantAAt(t, gw, name, ip)
}

func wantAAt(t *testing.T, server netip.Addr, name, ip string) {
	t.Helper()
	a := queryAt(t, server, name, dnsmessage.TypeA)
	if a.RCode != dnsmessage.RCodeSuccess || len(a.Addrs) != 1 || a.Addrs[0].String() != ip ||
		!a.Authoritative {
		t.Errorf("A %s @%s: %v %v aa=%v, want %s aa=true", name, server, a.RCode, a.Addrs,
			a.Authoritative, ip)
	}
}

func wantPTR(t *testing.T, ip, name string) {
	t.Helper()
	wantPTRAt(t, gw, ip, name)
}

func wantPTRAt(t *testing.T, server netip.Addr, ip, name string) {
	t.Helper()
	a := queryAt(t, server, ReverseName(netip.MustParseAddr(ip)), dnsmessage.TypePTR)
	if a.RCode != dnsmessage.RCodeSuccess || len(a.Names) != 1 || a.Names[0] != name ||
		!a.Authoritative {
		t.Errorf("PTR %s @%s: %v %v aa=%v, want %s aa=true", ip, server, a.RCode, a.Names,
			a.Authoritative, name)
	}
}

func TestDnsmasqAnswersForThePlanOnly(t *testing.T) {
	enterLabNS(t)
	state := stateDir(t)
	t.Cleanup(func() { Stop(state) })
	res := startDnsmasq(t, testLab, state)
	if !res.Started || res.PID == 0 {
		t.Fatalf("Ensure: %+v, want a started dnsmasq", res)
	}

	wantA(t, "vm1.lab", "10.0.5.10")
	wantA(t, "vm2.lab", "10.0.5.42")
	wantA(t, "c1.lab", "10.0.5.254")
	wantA(t, "gw.lab", "10.0.5.1")
	wantA(t, "host.lab", "10.0.5.1")
	wantPTR(t, "10.0.5.10", "vm1.lab.")
	wantPTR(t, "10.0.5.254", "c1.lab.")
	wantPTR(t, "10.0.5.1", "gw.lab.")

	for name, want := range map[string]dnsmessage.RCode{
		"nope.lab":    dnsmessage.RCodeNameError,
		"example.com": dnsmessage.RCodeRefused,
		"debian.org":  dnsmessage.RCodeRefused,
		"vm1":         dnsmessage.RCodeRefused,
	} {
		a := query(t, name, dnsmessage.TypeA)
		if len(a.Addrs) != 0 || a.RCode != want {
			t.Errorf("A %s: %v %v, want %v and no address", name, a.RCode, a.Addrs, want)
		}
	}
	checkListensOnGatewayOnly(t, res.PID)
}

// checkListensOnGatewayOnly reads the sockets of dnsmasq: port 53 only on
// 10.0.5.1, never on a wildcard address.
func checkListensOnGatewayOnly(t *testing.T, pid int) {
	t.Helper()
	out, err := exec.Command("ss", "-Hlnup").CombinedOutput()
	if err != nil {
		t.Skipf("ss: %v", err)
	}
	dns := 0
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.Contains(l, "pid="+strconv.Itoa(pid)+",") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasSuffix(f[3], ":53") {
			continue
		}
		dns++
		if f[3] != "10.0.5.1:53" {
			t.Errorf("dnsmasq listens on %s; want 10.0.5.1:53 only", f[3])
		}
	}
	if dns != 1 {
		t.Errorf("dnsmasq has %d UDP port-53 sockets, want 1:\n%s", dns, out)
	}
}

func TestDnsmasqRestartsOnlyOnPlanChange(t *testing.T) {
	enterLabNS(t)
	state := stateDir(t)
	t.Cleanup(func() { Stop(state) })
	first := startDnsmasq(t, testLab, state)

	same := startDnsmasq(t, testLab, state)
	if same.Started || same.PID != first.PID {
		t.Errorf("Ensure without change: started %v pid %d; want pid %d kept",
			same.Started, same.PID, first.PID)
	}
	changed := startDnsmasq(t, testLab+"  - name: c2\n", state)
	if !changed.Started || changed.PID == first.PID {
		t.Errorf("Ensure with a new node: started %v pid %d; want a new process",
			changed.Started, changed.PID)
	}
	wantA(t, "c2.lab", "10.0.5.253")
	if isDnsmasq(first.PID, first.Config.Path) {
		t.Errorf("old dnsmasq pid %d still runs", first.PID)
	}

	if err := Stop(state); err != nil {
		t.Fatal(err)
	}
	st, err := Status(state)
	if err != nil || st.Running {
		t.Errorf("Status after Stop: %+v %v; want not running", st, err)
	}
}

func TestDnsmasqPicksUpRecordsWithoutRestart(t *testing.T) {
	enterLabNS(t)
	state := stateDir(t)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(state, LogFile))
			t.Logf("dnsmasq log:\n%s", log)
		}
		Stop(state)
	})
	res := startDnsmasq(t, testLab, state)

	if err := AddRecord(state, "late", netip.MustParseAddr("10.0.5.120")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A late.lab = 10.0.5.120", func() bool {
		a := query(t, "late.lab", dnsmessage.TypeA)
		return len(a.Addrs) == 1 && a.Addrs[0].String() == "10.0.5.120"
	})
	wantPTR(t, "10.0.5.120", "late.lab.")

	if err := RemoveRecord(state, "late"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "late.lab gone", func() bool {
		return len(query(t, "late.lab", dnsmessage.TypeA).Addrs) == 0
	})
	if pid, _ := running(res.Config); pid != res.PID {
		t.Errorf("dnsmasq pid %d after record changes, want %d", pid, res.PID)
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(dnsTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, dnsTimeout)
		}
		<-time.After(50 * time.Millisecond)
	}
}

// TestDHCPGivesAVMItsReservedAddress runs busybox udhcpc in a second netns
// on a veth into br-hlc with vm1's MAC, asking for the name "evil".
func TestDHCPGivesAVMItsReservedAddress(t *testing.T) {
	enterLabNS(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("no busybox for udhcpc (apt-get install busybox-static)")
	}
	state := stateDir(t)
	t.Cleanup(func() { Stop(state) })
	res := startDnsmasq(t, testLab, state)
	vm1 := "52:54:0a:00:05:0a"
	addClient(t, vm1)

	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && "+
		"echo \"ip=$ip mask=$mask router=$router dns=$dns domain=$domain mtu=$mtu\"\nexit 0\n"), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), dhcpTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", clientNS, "busybox", "udhcpc",
		"-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-x", "hostname:evil", "-O", "mtu",
		"-s", script).CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	t.Logf("udhcpc: %s", lastLine(string(out)))
	want := "ip=10.0.5.10 mask=24 router= dns=10.0.5.1 domain=lab mtu=1500"
	if !strings.Contains(string(out), want) {
		t.Errorf("udhcpc got %q, want %q", lastLine(string(out)), want)
	}

	st, err := Status(state)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(st.Leases, func(l Lease) bool { return l.MAC == vm1 })
	if i < 0 || st.Leases[i].IP.String() != "10.0.5.10" || st.Leases[i].Hostname != "vm1" {
		t.Errorf("leases %+v; want %s -> 10.0.5.10 named vm1", st.Leases, vm1)
	}
	d := Drift(testPlan(t, testLab), st.Leases)
	if len(d) != 1 || d[0].Node != "vm2" || d[0].Problem != "no lease" {
		t.Errorf("Drift after vm1's lease = %v; want only vm2 without lease", d)
	}
	if a := query(t, "evil.lab", dnsmessage.TypeA); len(a.Addrs) != 0 {
		t.Errorf("the name a DHCP client sent resolves: evil.lab -> %v", a.Addrs)
	}
	if !st.Running || st.PID != res.PID {
		t.Errorf("Status: %+v, want running pid %d", st, res.PID)
	}
}

// addClient makes netns clientNS with eth0 (MAC mac) whose peer is a port
// of br-hlc.
func addClient(t *testing.T, mac string) {
	t.Helper()
	addClientOn(t, clientNS, "hlc-dh0", "br-hlc", mac)
}

// addClientOn makes netns ns with eth0 (MAC mac) whose peer, host-side
// name veth, is a port of bridge; cleanup deletes the netns and the pair.
func addClientOn(t *testing.T, ns, veth, bridge, mac string) {
	t.Helper()
	exec.Command("ip", "netns", "del", ns).Run()
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
			"address", mac, "netns", ns},
		{"ip", "link", "set", veth, "master", bridge, "up"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestDHCPGivesAnUnknownMACNothing: the lab hands out its reservations only (static mode),
// so a client the plan does not know cannot take a reserved or unplanned address of the VM
// block.
func TestDHCPGivesAnUnknownMACNothing(t *testing.T) {
	enterLabNS(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("no busybox for udhcpc (apt-get install busybox-static)")
	}
	state := stateDir(t)
	t.Cleanup(func() { Stop(state) })
	startDnsmasq(t, testLab, state)
	addClient(t, "52:54:0a:00:05:77")

	ctx, cancel := context.WithTimeout(context.Background(), dhcpTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", clientNS, "busybox", "udhcpc",
		"-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", "/bin/true").CombinedOutput()
	if err == nil {
		t.Fatalf("udhcpc got a lease for a MAC the plan does not know:\n%s", out)
	}
	st, err := Status(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Leases) != 0 {
		t.Errorf("leases %+v; want none", st.Leases)
	}
}
