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

	"github.com/vishvananda/netns"
	"golang.org/x/net/dns/dnsmessage"
)

// Named network namespaces of the routed-lab root test: the server side
// holds br-hld and br-hld-b with one dnsmasq, each client side a DHCP
// client on a veth into one of the bridges.
const (
	routedNS  = "hld-dns"
	clientNSA = "hld-dha"
	clientNSB = "hld-dhb"
)

var (
	gwA = netip.MustParseAddr("10.0.30.1")
	gwB = netip.MustParseAddr("10.0.31.1")
)

func enterRoutedNS(t *testing.T) {
	t.Helper()
	enterNS(t, routedNS, bridgeAddr{"br-hld", "10.0.30.1/24"},
		bridgeAddr{"br-hld-b", "10.0.31.1/24"})
}

func TestOneDnsmasqAnswersOnEveryGateway(t *testing.T) {
	enterRoutedNS(t)
	state := stateDir(t)
	t.Cleanup(func() { Stop(state) })
	res := startDnsmasq(t, routedLab, state)
	if !res.Started || res.PID == 0 {
		t.Fatalf("Ensure: %+v, want a started dnsmasq", res)
	}

	for _, server := range []netip.Addr{gwA, gwB} {
		wantAAt(t, server, "vm1.lab", "10.0.30.10")
		wantAAt(t, server, "vm3.lab", "10.0.31.10")
		wantAAt(t, server, "c1.lab", "10.0.30.254")
		wantAAt(t, server, "c3.lab", "10.0.31.254")
		wantAAt(t, server, "gw.lab", "10.0.30.1")
		wantAAt(t, server, "gw-b.lab", "10.0.31.1")
		wantPTRAt(t, server, "10.0.30.10", "vm1.lab.")
		wantPTRAt(t, server, "10.0.31.10", "vm3.lab.")
		wantPTRAt(t, server, "10.0.31.254", "c3.lab.")
		wantPTRAt(t, server, "10.0.31.1", "gw-b.lab.")
		for name, want := range map[string]dnsmessage.RCode{
			"nope.lab":    dnsmessage.RCodeNameError,
			"example.com": dnsmessage.RCodeRefused,
		} {
			a := queryAt(t, server, name, dnsmessage.TypeA)
			if len(a.Addrs) != 0 || a.RCode != want {
				t.Errorf("A %s @%s: %v %v, want %v and no address", name, server, a.RCode,
					a.Addrs, want)
			}
		}
	}
	checkListensOn(t, res.PID, "10.0.30.1:53", "10.0.31.1:53")

	again := startDnsmasq(t, routedLab, state)
	if again.Started || again.PID != res.PID {
		t.Errorf("Ensure without change: started %v pid %d; want pid %d kept",
			again.Started, again.PID, res.PID)
	}
}

// checkListensOn reads the sockets of dnsmasq: port 53 exactly on want,
// never on a wildcard address.
func checkListensOn(t *testing.T, pid int, want ...string) {
	t.Helper()
	out, err := exec.Command("ss", "-Hlnup").CombinedOutput()
	if err != nil {
		t.Skipf("ss: %v", err)
	}
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if strings.Contains(l, "pid="+strconv.Itoa(pid)+",") && len(f) >= 4 &&
			strings.HasSuffix(f[3], ":53") {
			got = append(got, f[3])
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("dnsmasq listens on UDP %v, want %v:\n%s", got, want, out)
	}
}

// TestDHCPOnEverySegment runs busybox udhcpc on each bridge with the MAC of
// that segment's VM. Each client gets its reservation, its own gateway as
// DNS server, no router and, by option 121, a route to the other segment
// via its own gateway; the client on segment b then uses that route.
func TestDHCPOnEverySegment(t *testing.T) {
	enterRoutedNS(t)
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("no busybox for udhcpc (apt-get install busybox-static)")
	}
	state := stateDir(t)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(state, LogFile))
			t.Logf("dnsmasq log:\n%s", log)
		}
		Stop(state)
	})
	startDnsmasq(t, routedLab, state)
	vm1, vm3 := "52:54:0a:00:1e:0a", "52:54:0a:00:1f:0a"

	addClientOn(t, clientNSA, "hld-dha0", "br-hld", vm1)
	wantLease(t, clientNSA, "ip=10.0.30.10 mask=24 router= dns=10.0.30.1 domain=lab mtu=1500 "+
		"staticroutes=10.0.31.0/24 10.0.30.1")
	addClientOn(t, clientNSB, "hld-dhb0", "br-hld-b", vm3)
	wantLease(t, clientNSB, "ip=10.0.31.10 mask=24 router= dns=10.0.31.1 domain=lab mtu=1500 "+
		"staticroutes=10.0.30.0/24 10.0.31.1")

	st, err := Status(state)
	if err != nil {
		t.Fatal(err)
	}
	for mac, ip := range map[string]string{vm1: "10.0.30.10", vm3: "10.0.31.10"} {
		i := slices.IndexFunc(st.Leases, func(l Lease) bool { return l.MAC == mac })
		if i < 0 || st.Leases[i].IP.String() != ip {
			t.Errorf("leases %+v; want %s -> %s", st.Leases, mac, ip)
		}
	}
	if d := Drift(testPlan(t, routedLab), st.Leases); len(d) != 0 {
		t.Errorf("Drift after both leases = %v; want none", d)
	}

	useRoute(t, clientNSB, "10.0.31.10/24", "10.0.30.0/24 10.0.31.1")
}

// wantLease runs udhcpc once in netns ns, asking for the MTU and classless
// static routes (as systemd-networkd does with UseRoutes=yes), and checks
// what its script sees of the lease.
func wantLease(t *testing.T, ns, want string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "udhcpc.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"ip=$ip mask=$mask "+
		"router=$router dns=$dns domain=$domain mtu=$mtu staticroutes=$staticroutes\"\n"+
		"exit 0\n"), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), dhcpTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "busybox", "udhcpc",
		"-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-O", "mtu", "-O", "staticroutes",
		"-s", script).CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc in %s: %v\n%s", ns, err, out)
	}
	t.Logf("udhcpc in %s: %s", ns, lastLine(string(out)))
	if !strings.Contains(string(out), want) {
		t.Errorf("udhcpc in %s got %q, want %q", ns, lastLine(string(out)), want)
	}
}

// useRoute configures eth0 in netns ns as a DHCP client would from the
// lease (address, then each "DEST GW" pair of staticroutes) and checks
// that the other segment's gateway answers DNS and ping over that route.
func useRoute(t *testing.T, ns, addr, staticroutes string) {
	t.Helper()
	ip := func(args ...string) {
		t.Helper()
		cmd := append([]string{"-n", ns}, args...)
		if out, err := exec.Command("ip", cmd...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
	ip("addr", "add", addr, "dev", "eth0")
	f := strings.Fields(staticroutes)
	for i := 0; i+1 < len(f); i += 2 {
		ip("route", "add", f[i], "via", f[i+1], "dev", "eth0")
	}
	out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2",
		gwA.String()).CombinedOutput()
	if err != nil {
		t.Errorf("ping %s from %s over the option-121 route: %v\n%s", gwA, ns, err, out)
	}
	for _, server := range []netip.Addr{gwB, gwA} {
		a, err := queryFrom(ns, server, "vm1.lab")
		if err != nil || len(a.Addrs) != 1 || a.Addrs[0].String() != "10.0.30.10" {
			t.Errorf("A vm1.lab @%s from %s: %+v %v; want 10.0.30.10", server, ns, a, err)
		}
	}
}

// queryFrom asks server for name's A record from a thread in netns ns; the
// thread is dropped afterwards since it stays in ns.
func queryFrom(ns string, server netip.Addr, name string) (Answer, error) {
	type result struct {
		a   Answer
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			done <- result{err: err}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		a, err := Query(ctx, server, name, dnsmessage.TypeA)
		done <- result{a, err}
	}()
	r := <-done
	return r.a, r.err
}
