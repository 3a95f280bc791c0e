package labctl

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified.
	. "github.com/onsi/gomega"    //nolint:revive

	"hybridlab/matrix"
	"hybridlab/probes/remote"
	"hybridlab/topology"
)

// NamespacePort puts a network namespace on the main segment's lab bridge the way a VM's tap
// sits there: a veth whose host end is a port of the bridge (not made by Docker), its other
// end eth0 in the namespace at a free lab address, and the agent's `probe serve` running
// inside. It stands in for a VM where booting one is too slow. Everything is removed when the
// calling node ends. The names carry the lab and the run's seed, so a sweeper can find
// leftovers: `ip netns add LAB-portN`, `ip link add vpLABN type veth peer name eth0 netns
// LAB-portN`.
func (l *Lab) NamespacePort() matrix.Endpoint {
	return l.NamespacePortOn(topology.MainSegment)
}

// NamespacePortOn is NamespacePort on the bridge of segment seg, at a free address of that
// segment. In a routed lab the namespace also gets a route to every other segment's subnet via
// its own segment's gateway (`ip route add SUBNET via GW`), as VMs learn them by DHCP; it gets
// no default route, so it reaches nothing outside the lab. Ports on segments other than main
// are named LAB-SEG-portN and vpLAB-iN (i the segment's index). It fails the spec when the lab
// has no segment seg.
func (l *Lab) NamespacePortOn(seg string) matrix.Endpoint {
	idx := segmentIndex(l.Plan, seg)
	view := l.Plan.View(seg)
	seed := strconv.Itoa(int(GinkgoRandomSeed() % 1000))
	ns := l.Plan.Lab + "-port" + seed
	host := "vp" + truncate(l.Plan.Lab, 8) + seed
	if idx > 0 {
		ns = l.Plan.Lab + "-" + seg + "-port" + seed
		host = "vp" + truncate(l.Plan.Lab, 6) + "-" + strconv.Itoa(idx) + seed
	}
	ip := FreeAddr(view)
	prefix := netip.PrefixFrom(ip, view.Subnet.Bits()).String()
	mtu := strconv.Itoa(l.Plan.MTU)

	By(fmt.Sprintf("adding namespace %s on %s at %s (port %s)", ns, view.Bridge.Name, ip, host))
	DeferCleanup(func() {
		_, _ = Run("ip", "link", "del", host)
		_, _ = Run("ip", "netns", "del", ns)
	})
	cmds := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", host, "mtu", mtu, "type", "veth", "peer", "name", "eth0",
			"mtu", mtu, "netns", ns},
		{"ip", "link", "set", host, "master", view.Bridge.Name, "up"},
		{"ip", "-n", ns, "addr", "add", prefix, "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	}
	for _, other := range l.Plan.AllSegments() {
		if other.Name != seg {
			cmds = append(cmds, []string{"ip", "-n", ns, "route", "add",
				other.Subnet.Masked().String(), "via", view.Gateway.String()})
		}
	}
	for _, c := range cmds {
		_, err := Run(c[0], c[1:]...)
		Expect(err).NotTo(HaveOccurred())
	}
	name := "netns"
	if idx > 0 {
		name = "netns-" + seg
	}
	e := matrix.Namespace(name, ns, ip, Agent())
	serve(remote.Netns{Name: ns, Path: Agent()}, ip)
	e.Serve = nil // serving already, for the node's whole life
	return e
}

// segmentIndex is the position of segment seg in the plan, main first; it fails the spec
// when there is no such segment.
func segmentIndex(p *topology.Plan, seg string) int {
	for i, s := range p.AllSegments() {
		if s.Name == seg {
			return i
		}
	}
	Fail(fmt.Sprintf("lab %q has no segment %q", p.Lab, seg))
	return -1
}

func serve(s matrix.Starter, ip netip.Addr) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := s.Start(ctx, "serve", "--tcp", netip.AddrPortFrom(ip, matrix.EchoTCPPort).String(),
		"--udp", netip.AddrPortFrom(ip, matrix.EchoUDPPort).String(), "--sink", "",
		"--http", "")
	if err != nil {
		cancel()
	}
	Expect(err).NotTo(HaveOccurred(), "start probe serve at %s", ip)
	DeferCleanup(func() {
		_ = p.Stop(2 * time.Second)
		cancel()
	})
}

// FreeAddr returns the first address of the lab subnet that the plan gives to nothing: not
// the gateway, no node or reservation, outside the VM DHCP block and the Docker range. It
// looks in the main segment; pass p.View(segment) for another segment's subnet.
func FreeAddr(p *topology.Plan) netip.Addr {
	used := map[netip.Addr]bool{}
	for _, r := range p.Ledger() {
		used[r.IP] = true
	}
	for a := p.Gateway.Next(); p.Subnet.Contains(a); a = a.Next() {
		if !used[a] && !p.DHCP.Contains(a) && !p.Docker.IPRange.Contains(a) && a != p.Gateway {
			return a
		}
	}
	Fail("no free address in " + p.Subnet.String() + " outside the DHCP block and Docker range")
	return netip.Addr{}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
