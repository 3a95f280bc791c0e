package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// portReadyTimeout bounds how long a port of an STP-off bridge may take to
// forward (fault B18 wants well under a second).
const portReadyTimeout = time.Second

// enterNetns moves the test goroutine, for the rest of the test, onto its
// own OS thread in a fresh network namespace. The thread is never
// unlocked, so the runtime discards it when the test ends and the
// namespace, with every link in it, goes away.
func enterNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root to create a network namespace")
	}
	runtime.LockOSThread()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
}

// ipCmd runs `ip ARGS` in the test's namespace.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	nsPath := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	full := append([]string{"--net=" + nsPath, "ip"}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func kernelSpec() BridgeSpec {
	mac, _ := net.ParseMAC("02:68:0a:4d:01:01")
	return BridgeSpec{
		Lab: "hlt", Name: "hltbr0", MAC: mac, MTU: 1500,
		Address: netip.MustParsePrefix("10.77.1.1/24"),
		IPv6:    []netip.Prefix{netip.MustParsePrefix("fd00:77:1::1/64")},
	}
}

func TestKernelEnsureCreatesBridge(t *testing.T) {
	enterNetns(t)
	spec := kernelSpec()

	r, err := Ensure(spec)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if r.Action != Created || !r.Owned {
		t.Errorf("first Ensure = %s, want created and owned", r)
	}

	st, err := Inspect(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st.MTU != 1500 || st.MAC != "02:68:0a:4d:01:01" || st.STP || st.ForwardDelay != 0 ||
		!st.AdminUp || st.Lab() != "hlt" || len(st.Addresses) != 2 {
		t.Errorf("Inspect = %+v", st)
	}
	details := ipCmd(t, "-d", "link", "show", spec.Name)
	for _, want := range []string{"stp_state 0", "forward_delay 0", "alias hybridlab:hlt",
		"link/ether 02:68:0a:4d:01:01", "mtu 1500"} {
		if !strings.Contains(details, want) {
			t.Errorf("ip -d link show lacks %q:\n%s", want, details)
		}
	}

	again, err := Ensure(spec)
	if err != nil || again.Action != Unchanged {
		t.Errorf("second Ensure = %s, %v; want unchanged", again, err)
	}
}

func TestKernelPortJoinKeepsMACAndMTU(t *testing.T) {
	enterNetns(t)
	spec := kernelSpec()
	if _, err := Ensure(spec); err != nil {
		t.Fatal(err)
	}
	before, err := TakeSnapshot(spec.Name)
	if err != nil {
		t.Fatal(err)
	}

	// A lower MAC and a larger MTU than the bridge's: an unpinned bridge
	// would take both from its first port.
	ipCmd(t, "link", "add", "hltv0", "mtu", "9000", "address", "02:00:00:00:00:01",
		"type", "veth", "peer", "name", "hltv0p", "mtu", "9000")
	ipCmd(t, "link", "set", "hltv0", "master", spec.Name, "up")
	ipCmd(t, "link", "set", "hltv0p", "up")
	start := time.Now()

	if err := WaitPortsForwarding(spec.Name, portReadyTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("veth port forwarding %s after attach", time.Since(start))

	st, err := Inspect(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(st.Snapshot()); d != nil {
		t.Errorf("bridge changed when a port joined: %v", d)
	}
	if len(st.Ports) != 1 {
		t.Fatalf("ports = %+v, want hltv0", st.Ports)
	}
	p := st.Ports[0]
	if p.Name != "hltv0" || p.Master != spec.Name || p.MTU != 9000 || p.Kind != "veth" ||
		p.Owner != "container" || p.State != PortForwarding {
		t.Errorf("port = %+v", p)
	}
}

func TestKernelAdoptsUntaggedBridge(t *testing.T) {
	enterNetns(t)
	spec := kernelSpec()
	spec.IPv6 = nil
	// Made by hand as the recipe does: STP off, iproute2's default delay.
	ipCmd(t, "link", "add", spec.Name, "address", spec.MAC.String(), "type", "bridge")
	ipCmd(t, "addr", "add", spec.Address.String(), "dev", spec.Name)

	r, err := Ensure(spec)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if r.Action != Adopted || r.Owned || !strings.Contains(r.String(), "not created by hybridlab") {
		t.Errorf("Ensure = %s, want adopted, not owned", r)
	}

	err = Remove(spec.Name, spec.Lab)
	if !errors.Is(err, ErrNotOwned) {
		t.Errorf("Remove of untagged bridge = %v, want ErrNotOwned", err)
	}
	if _, err := Inspect(spec.Name); err != nil {
		t.Errorf("untagged bridge gone after refused Remove: %v", err)
	}
	if err := ForceRemove(spec.Name); err != nil {
		t.Fatalf("ForceRemove: %v", err)
	}
	if _, err := Inspect(spec.Name); !isNotFound(err) {
		t.Errorf("Inspect after ForceRemove = %v, want not found", err)
	}
}

func TestKernelRejectsDifferentSettings(t *testing.T) {
	enterNetns(t)
	spec := kernelSpec()
	ipCmd(t, "link", "add", spec.Name, "mtu", "9000", "type", "bridge", "stp_state", "1")

	_, err := Ensure(spec)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Ensure = %v, want ErrMismatch", err)
	}
	for _, want := range []string{"mtu 9000, the plan wants 1500", "set mtu: 9000 in lab.yaml",
		"stp on, the plan wants off", "forward_delay 1500 (15s)", "mac ",
		"address (none), the plan wants 10.77.1.1/24"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	st, err := Inspect(spec.Name)
	if err != nil || st.MTU != 9000 || !st.STP {
		t.Errorf("Ensure changed a bridge it does not own: %+v, %v", st, err)
	}
}

func TestKernelRefusesOtherLinksAndLabs(t *testing.T) {
	enterNetns(t)
	spec := kernelSpec()
	ipCmd(t, "link", "add", spec.Name, "type", "veth", "peer", "name", "hltv1p")
	_, err := Ensure(spec)
	if !errors.Is(err, ErrNotBridge) || !strings.Contains(err.Error(), "is a veth") {
		t.Errorf("Ensure over a veth = %v, want ErrNotBridge naming veth", err)
	}
	if err := Remove(spec.Name, spec.Lab); !errors.Is(err, ErrNotBridge) {
		t.Errorf("Remove of a veth = %v, want ErrNotBridge", err)
	}
	ipCmd(t, "link", "del", spec.Name)

	ipCmd(t, "link", "add", spec.Name, "type", "bridge")
	ipCmd(t, "link", "set", spec.Name, "alias", "hybridlab:other")
	if _, err := Ensure(spec); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Ensure over another lab's bridge = %v, want ErrNotOwned", err)
	}
	if err := Remove(spec.Name, spec.Lab); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Remove of another lab's bridge = %v, want ErrNotOwned", err)
	}
}

func TestKernelRepairsOwnBridge(t *testing.T) {
	enterNetns(t)
	spec := kernelSpec()
	if _, err := Ensure(spec); err != nil {
		t.Fatal(err)
	}
	want, err := TakeSnapshot(spec.Name)
	if err != nil {
		t.Fatal(err)
	}

	// What Docker did to custom bridges in fault B11, plus a user's edits.
	ipCmd(t, "addr", "flush", "dev", spec.Name, "scope", "global")
	ipCmd(t, "addr", "add", "10.77.99.1/24", "dev", spec.Name)
	ipCmd(t, "link", "set", spec.Name, "mtu", "1400", "down")
	ipCmd(t, "link", "set", spec.Name, "type", "bridge", "stp_state", "1")
	drifted, err := TakeSnapshot(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Diff(drifted)) < 3 {
		t.Fatalf("snapshot missed the drift: %v", want.Diff(drifted))
	}

	r, err := Ensure(spec)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	t.Logf("%s", r)
	if r.Action != Repaired || len(r.Changes) < 4 {
		t.Errorf("Ensure = %s, want repaired with mtu, stp, addresses, up", r)
	}
	got, err := TakeSnapshot(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if d := want.Diff(got); d != nil {
		t.Errorf("after repair: %v", d)
	}
}

func TestKernelRemove(t *testing.T) {
	enterNetns(t)
	spec := kernelSpec()
	if _, err := Ensure(spec); err != nil {
		t.Fatal(err)
	}
	tagged, err := Tagged()
	if err != nil || len(tagged) != 1 || tagged[0].Lab() != spec.Lab {
		t.Errorf("Tagged = %+v, %v; want the lab's bridge", tagged, err)
	}
	if err := Remove(spec.Name, spec.Lab); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := netlink.LinkByName(spec.Name); err == nil {
		t.Error("bridge still present after Remove")
	}
	if err := Remove(spec.Name, spec.Lab); err != nil {
		t.Errorf("Remove of a missing bridge = %v, want nil", err)
	}
}
