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

// NamespacePort puts a network namespace on the lab bridge the way a VM's tap sits there: a
// veth whose host end is a port of the bridge (not made by Docker), its other end eth0 in the
// namespace at a free lab address, and the agent's `probe serve` running inside. It stands in
// for a VM where booting one is too slow. Everything is removed when the calling node ends.
// The names carry the lab and the run's seed, so a sweeper can find leftovers:
// `ip netns add LAB-portN`, `ip link add vpLABN type veth peer name eth0 netns LAB-portN`.
func (l *Lab) NamespacePort() matrix.Endpoint {
	seed := strconv.Itoa(int(GinkgoRandomSeed() % 1000))
	ns := l.Plan.Lab + "-port" + seed
	host := "vp" + truncate(l.Plan.Lab, 8) + seed
	ip := FreeAddr(l.Plan)
	prefix := netip.PrefixFrom(ip, l.Plan.Subnet.Bits()).String()
	mtu := strconv.Itoa(l.Plan.MTU)

	By(fmt.Sprintf("adding namespace %s on %s at %s (port %s)", ns, l.Plan.Bridge.Name, ip,
		host))
	DeferCleanup(func() {
		_, _ = Run("ip", "link", "del", host)
		_, _ = Run("ip", "netns", "del", ns)
	})
	for _, c := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", host, "mtu", mtu, "type", "veth", "peer", "name", "eth0",
			"mtu", mtu, "netns", ns},
		{"ip", "link", "set", host, "master", l.Plan.Bridge.Name, "up"},
		{"ip", "-n", ns, "addr", "add", prefix, "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	} {
		_, err := Run(c[0], c[1:]...)
		Expect(err).NotTo(HaveOccurred())
	}
	e := matrix.Namespace("netns", ns, ip, Agent())
	serve(remote.Netns{Name: ns, Path: Agent()}, ip)
	e.Serve = nil // serving already, for the node's whole life
	return e
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
// the gateway, no node or reservation, outside the VM DHCP block and the Docker range.
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
