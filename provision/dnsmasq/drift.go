package dnsmasq

import (
	"fmt"
	"net/netip"

	"hybridlab/topology"
)

// Mismatch is one difference between the plan and the DHCP leases.
type Mismatch struct {
	Node string
	MAC  string
	Want netip.Addr
	// Got is the leased address; invalid when the MAC holds no lease.
	Got     netip.Addr
	Problem string
}

func (m Mismatch) String() string {
	if !m.Got.IsValid() {
		return fmt.Sprintf("%s (mac %s): want %s: %s", m.Node, m.MAC, m.Want, m.Problem)
	}
	return fmt.Sprintf("%s (mac %s): want %s, got %s: %s", m.Node, m.MAC, m.Want, m.Got, m.Problem)
}

// Drift compares leases with the plan's VMs on every segment (faults B14,
// B15): each VM's MAC must hold exactly its planned address, and no other
// MAC may hold a VM's address. A lease in another segment's subnet than
// the VM's says so (the VM's lab NIC is on the wrong bridge). A VM without
// a lease is reported as "no lease"; callers that check before every VM
// booted may ignore those.
func Drift(p *topology.Plan, leases []Lease) []Mismatch {
	byMAC := map[string][]Lease{}
	byIP := map[netip.Addr][]Lease{}
	for _, l := range leases {
		byMAC[l.MAC] = append(byMAC[l.MAC], l)
		byIP[l.IP] = append(byIP[l.IP], l)
	}
	var out []Mismatch
	for _, n := range p.VMs() {
		m := Mismatch{Node: n.Name, MAC: n.MAC, Want: n.IP}
		mine := byMAC[n.MAC]
		switch {
		case len(mine) == 0:
			m.Problem = "no lease"
			out = append(out, m)
		case len(mine) > 1 || mine[0].IP != n.IP:
			m.Got, m.Problem = mine[0].IP, fmt.Sprintf("%d leases, first off plan", len(mine))
			if len(mine) == 1 {
				m.Problem = offPlan(p, n, mine[0].IP)
			}
			out = append(out, m)
		}
		for _, l := range byIP[n.IP] {
			if l.MAC != n.MAC {
				out = append(out, Mismatch{Node: n.Name, MAC: l.MAC, Want: n.IP, Got: l.IP,
					Problem: "another mac holds the vm's address"})
			}
		}
	}
	return out
}

func offPlan(p *topology.Plan, n topology.Node, got netip.Addr) string {
	want := p.SegmentOf(n).Name
	if seg, ok := p.SegmentContaining(got); ok && p.Routed() && seg.Name != want {
		return fmt.Sprintf("leased on segment %q, planned on segment %q", seg.Name, want)
	}
	return "leased address differs from the plan"
}
