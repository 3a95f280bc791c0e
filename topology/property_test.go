package topology_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"

	"hybridlab/topology"
)

// labGen builds random labs that are valid by construction, so every one
// of them must yield a plan.
type labGen struct{ r *rand.Rand }

func addrAt(base uint32, off int) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], base+uint32(off))
	return netip.AddrFrom4(b).String()
}

// span is an inclusive range of host offsets inside the subnet.
type span struct{ lo, hi int }

func (g labGen) lab() (*topology.Lab, map[string]string) {
	bits := 16 + g.r.IntN(14)
	size := 1 << (32 - bits)
	base := (10<<24 | g.r.Uint32N(1<<24)) &^ uint32(size-1)
	lab := &topology.Lab{Name: "p", Subnet: fmt.Sprintf("%s/%d", addrAt(base, 0), bits)}
	lab.Management.Subnet = "192.168.99.0/24"
	gw := 1
	if g.r.IntN(2) == 0 {
		gw = 1 + g.r.IntN(size-2)
		lab.Gateway = addrAt(base, gw)
	}
	docker := g.dockerBlock(bits, size, gw)
	lab.DockerRange = fmt.Sprintf("%s/%d", addrAt(base, docker.lo),
		32-log2(docker.hi-docker.lo+1))
	dhcp := g.dhcpRange(size, gw, docker)
	lab.DHCPRange = addrAt(base, dhcp.lo) + "-" + addrAt(base, dhcp.hi)

	taken := map[int]bool{0: true, size - 1: true, gw: true}
	for range g.r.IntN(4) {
		off := 1 + g.r.IntN(size-2)
		if !taken[off] {
			taken[off] = true
			lab.Reserved = append(lab.Reserved, topology.Reserved{IP: addrAt(base, off)})
		}
	}
	pins := map[string]string{}
	for i := range g.count(dhcp, taken) {
		vm := topology.VM{Name: fmt.Sprintf("v%d", i), MAC: g.mac()}
		vm.IP = g.pin(base, dhcp, taken)
		pins[vm.Name] = vm.IP
		lab.VMs = append(lab.VMs, vm)
	}
	for i := range g.count(docker, taken) {
		c := topology.Container{Name: fmt.Sprintf("c%d", i), MAC: g.mac()}
		c.IP = g.pin(base, docker, taken)
		pins[c.Name] = c.IP
		lab.Containers = append(lab.Containers, c)
	}
	if len(lab.VMs)+len(lab.Containers) == 0 {
		return g.lab()
	}
	return lab, pins
}

func log2(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// dockerBlock picks an aligned block of the subnet that misses the gateway.
func (g labGen) dockerBlock(bits, size, gw int) span {
	for {
		d := bits + 1 + g.r.IntN(min(3, 30-bits))
		n := 1 << (32 - d)
		lo := g.r.IntN(size/n) * n
		if gw < lo || gw >= lo+n {
			return span{lo, lo + n - 1}
		}
	}
}

// dhcpRange picks a block of host offsets that misses the gateway and the
// Docker block.
func (g labGen) dhcpRange(size, gw int, docker span) span {
	var free []span
	for _, s := range []span{{1, gw - 1}, {gw + 1, size - 2}} {
		for _, part := range cut(s, docker) {
			if part.lo <= part.hi {
				free = append(free, part)
			}
		}
	}
	s := free[g.r.IntN(len(free))]
	lo := s.lo + g.r.IntN(s.hi-s.lo+1)
	hi := lo + g.r.IntN(min(s.hi-lo+1, 300))
	return span{lo, hi}
}

func cut(s, hole span) []span {
	if hole.hi < s.lo || hole.lo > s.hi {
		return []span{s}
	}
	return []span{{s.lo, hole.lo - 1}, {hole.hi + 1, s.hi}}
}

func (g labGen) count(s span, taken map[int]bool) int {
	free := s.hi - s.lo + 1
	for off := range taken {
		if off >= s.lo && off <= s.hi {
			free--
		}
	}
	return g.r.IntN(min(free, 20) + 1)
}

// pin returns a free address of s for about a third of the nodes and ""
// (automatic placement) otherwise. A pinned address is marked taken.
func (g labGen) pin(base uint32, s span, taken map[int]bool) string {
	if g.r.IntN(3) != 0 {
		return ""
	}
	for range 50 {
		off := s.lo + g.r.IntN(s.hi-s.lo+1)
		if !taken[off] {
			taken[off] = true
			return addrAt(base, off)
		}
	}
	return ""
}

func (g labGen) mac() string {
	if g.r.IntN(5) != 0 {
		return ""
	}
	hw := make(net.HardwareAddr, 6)
	for i := range hw {
		hw[i] = byte(g.r.UintN(256))
	}
	hw[0] = hw[0]&^1 | 2
	return hw.String()
}

func TestPlanProperties(t *testing.T) {
	g := labGen{rand.New(rand.NewPCG(1, 2))}
	for i := range 1000 {
		lab, pins := g.lab()
		p, err := topology.NewPlan(lab)
		if err != nil {
			t.Fatalf("lab %d (%s, dhcp %s, docker %s, gw %q): %v", i, lab.Subnet,
				lab.DHCPRange, lab.DockerRange, lab.Gateway, err)
		}
		for _, problem := range planProblems(p, pins) {
			t.Errorf("lab %d (%s): %s", i, lab.Subnet, problem)
		}
	}
}

func planProblems(p *topology.Plan, pins map[string]string) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	seen := map[netip.Addr]string{}
	for _, r := range p.Ledger() {
		if prev, dup := seen[r.IP]; dup {
			bad("%s used by %s and %s", r.IP, prev, r.Owner)
		}
		seen[r.IP] = r.Owner
	}
	docker := p.Docker.IPRange
	last := broadcastOf(p.Subnet)
	macs := map[string]string{p.Bridge.MAC: "bridge"}
	for _, n := range p.Nodes {
		if n.IP == p.Gateway || n.IP == p.Subnet.Addr() || n.IP == last {
			bad("%s got the special address %s", n.Name, n.IP)
		}
		inDHCP, inDocker := p.DHCP.Contains(n.IP), docker.Contains(n.IP)
		aux := auxHas(p, n.IP)
		switch {
		case n.Kind == topology.KindVM && (!inDHCP || inDocker || !aux):
			bad("vm %s at %s: dhcp %v docker %v aux %v", n.Name, n.IP, inDHCP, inDocker, aux)
		case n.Kind == topology.KindContainer && (inDHCP || !inDocker || aux):
			bad("container %s at %s: dhcp %v docker %v aux %v", n.Name, n.IP, inDHCP, inDocker, aux)
		}
		if want := pins[n.Name]; want != "" && n.IP.String() != want {
			bad("%s pinned to %s got %s", n.Name, want, n.IP)
		}
		hw, err := net.ParseMAC(n.MAC)
		if err != nil || hw[0]&1 != 0 || hw[0]&2 == 0 {
			bad("%s has MAC %s: not a locally administered unicast MAC", n.Name, n.MAC)
		}
		if prev, dup := macs[strings.ToLower(n.MAC)]; dup {
			bad("%s and %s share MAC %s", prev, n.Name, n.MAC)
		}
		macs[strings.ToLower(n.MAC)] = n.Name
	}
	return out
}

func auxHas(p *topology.Plan, ip netip.Addr) bool {
	for _, a := range p.Docker.AuxAddresses {
		if a == ip {
			return true
		}
	}
	return false
}

func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
