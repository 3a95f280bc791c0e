package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// segmentDefaults returns a copy of segs with empty fields set: the bridge
// to br-LAB-NAME, the gateway and ranges as for the main segment.
func segmentDefaults(lab string, segs []Segment) []Segment {
	if len(segs) == 0 {
		return nil
	}
	out := make([]Segment, len(segs))
	for i, s := range segs {
		s.Reserved = slices.Clone(s.Reserved)
		if s.Bridge == "" {
			s.Bridge = "br-" + lab + "-" + s.Name
		}
		if subnet, err := netip.ParsePrefix(s.Subnet); err == nil && subnet.Addr().Is4() {
			tmp := Lab{Gateway: s.Gateway, DHCPRange: s.DHCPRange, DockerRange: s.DockerRange}
			defaultRanges(&tmp, subnet.Masked())
			s.Gateway, s.DHCPRange, s.DockerRange = tmp.Gateway, tmp.DHCPRange, tmp.DockerRange
		}
		out[i] = s
	}
	return out
}

// segmentLabs splits a lab with defaults applied into one lab per segment,
// main first: each has the segment's bridge, subnet, ranges, reserved
// entries and nodes, so that one segment is validated and planned exactly
// as a lab without segments is.
func (l *Lab) segmentLabs() []*Lab {
	main := *l
	main.segment = MainSegment
	main.Segments = nil
	main.Policies = nil
	main.VMs, main.Containers = l.nodesOn(MainSegment)
	out := []*Lab{&main}
	for _, s := range l.Segments {
		sl := main
		sl.segment = s.Name
		sl.Bridge, sl.Subnet, sl.Gateway = s.Bridge, s.Subnet, s.Gateway
		sl.DHCPRange, sl.DockerRange, sl.Reserved = s.DHCPRange, s.DockerRange, s.Reserved
		sl.VMs, sl.Containers = l.nodesOn(s.Name)
		out = append(out, &sl)
	}
	return out
}

func (l *Lab) nodesOn(seg string) ([]VM, []Container) {
	var vms []VM
	var ctrs []Container
	for _, vm := range l.VMs {
		if vm.Segment == seg || (seg == MainSegment && vm.Segment == "") {
			vms = append(vms, vm)
		}
	}
	for _, c := range l.Containers {
		if c.Segment == seg || (seg == MainSegment && c.Segment == "") {
			ctrs = append(ctrs, c)
		}
	}
	return vms, ctrs
}

// segments checks the segments section: names, the nodes' references to
// segments, each segment on its own (as the main segment is checked), and
// that segments share no subnet, bridge or management network.
func (v *validator) segments(l *Lab) {
	names := []string{MainSegment}
	twice := map[int]bool{}
	for i, s := range l.Segments {
		switch {
		case !dnsLabel.MatchString(s.Name) || len(s.Name) > MaxLabName:
			v.addf("segment %q: name is not a DNS label of at most %d bytes; use a-z, 0-9 and '-'",
				s.Name, MaxLabName)
		case s.Name == MainSegment:
			v.addf("segment %q: the name is taken by the lab's top-level bridge and subnet; "+
				"pick another name", s.Name)
		case slices.Contains(names, s.Name):
			v.addf("segment %q: declared twice; give each segment its own name", s.Name)
			twice[i] = true
		}
		names = append(names, s.Name)
	}
	ref := func(kind, node, seg string) {
		if seg != "" && !slices.Contains(names, seg) {
			v.addf("%s %q: segment %q is not declared; use one of %s or declare it under segments",
				kind, node, seg, strings.Join(names, ", "))
		}
	}
	for _, vm := range l.VMs {
		ref("vm", vm.Name, vm.Segment)
	}
	for _, c := range l.Containers {
		ref("container", c.Name, c.Segment)
	}

	labs := l.segmentLabs()
	subnets := map[string]netip.Prefix{}
	if p, err := netip.ParsePrefix(l.Subnet); err == nil && p.Masked() == p {
		subnets[MainSegment] = p
	}
	bridges := map[string]string{l.Bridge: "the bridge of segment \"main\"",
		l.Management.Bridge: "the management bridge"}
	mgmt, merr := netip.ParsePrefix(l.Management.Subnet)
	for i, s := range l.Segments {
		if twice[i] {
			continue
		}
		sl := labs[i+1]
		sv := &validator{}
		if subnet, ok := sv.subnet(sl); ok {
			sv.ranges(sl, subnet)
			sv.nodes(sl, subnet)
			for _, name := range names[:i+1] {
				if other, ok := subnets[name]; ok && other.Overlaps(subnet) {
					sv.addf("subnet %s overlaps subnet %s of segment %q; give each segment "+
						"its own range", subnet, other, name)
				}
			}
			if merr == nil && mgmt.Masked().Overlaps(subnet) {
				sv.addf("subnet %s overlaps management.subnet %s; give each its own range",
					subnet, mgmt)
			}
			subnets[s.Name] = subnet
		}
		sv.ifname("bridge", s.Bridge)
		if prev, dup := bridges[s.Bridge]; dup && s.Bridge != "" {
			sv.addf("bridge %q: already %s; give each segment its own bridge", s.Bridge, prev)
		}
		bridges[s.Bridge] = fmt.Sprintf("the bridge of segment %q", s.Name)
		for _, p := range sv.problems {
			v.addf("segment %q: %s", s.Name, p)
		}
	}
}

func dockerNetworkName(l *Lab) string {
	if l.segment == "" || l.segment == MainSegment {
		return l.Name + "-net"
	}
	return l.Name + "-" + l.segment + "-net"
}

func bridgeOwner(seg string) string {
	if seg == "" || seg == MainSegment {
		return "lab bridge"
	}
	return "lab bridge of segment " + seg
}

func (p *Plan) segmentPlan(name string) SegmentPlan {
	return SegmentPlan{Name: name, Subnet: p.Subnet, Gateway: p.Gateway, Bridge: p.Bridge,
		DHCP: p.DHCP, Docker: p.Docker}
}

// Routed reports whether the lab has more than one segment, so the host
// routes between them.
func (p *Plan) Routed() bool { return len(p.Segments) > 1 }

// Segment returns the segment with the given name.
func (p *Plan) Segment(name string) (SegmentPlan, bool) {
	for _, s := range p.Segments {
		if s.Name == name {
			return s, true
		}
	}
	return SegmentPlan{}, false
}

// SegmentOf returns the segment node n is on.
func (p *Plan) SegmentOf(n Node) SegmentPlan {
	if s, ok := p.Segment(n.Segment); ok {
		return s
	}
	return p.segmentPlan(MainSegment)
}

// AllSegments returns the plan's segments, main first; a plan made by hand
// without Segments has its main segment only.
func (p *Plan) AllSegments() []SegmentPlan {
	if len(p.Segments) == 0 {
		return []SegmentPlan{p.segmentPlan(MainSegment)}
	}
	return p.Segments
}

// Bridges returns every segment's bridge name, main first.
func (p *Plan) Bridges() []string {
	var out []string
	for _, s := range p.AllSegments() {
		out = append(out, s.Bridge.Name)
	}
	return out
}

// DockerNetworks returns every segment's Docker network name, main first.
func (p *Plan) DockerNetworks() []string {
	var out []string
	for _, s := range p.AllSegments() {
		out = append(out, s.Docker.Network)
	}
	return out
}

// Subnets returns every segment's subnet, main first.
func (p *Plan) Subnets() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.AllSegments() {
		out = append(out, s.Subnet.Masked())
	}
	return out
}

// Gateways returns every segment's gateway (the host's address on it),
// main first.
func (p *Plan) Gateways() []netip.Addr {
	var out []netip.Addr
	for _, s := range p.AllSegments() {
		out = append(out, s.Gateway)
	}
	return out
}

// SegmentContaining returns the segment whose subnet holds ip.
func (p *Plan) SegmentContaining(ip netip.Addr) (SegmentPlan, bool) {
	for _, s := range p.AllSegments() {
		if s.Subnet.Contains(ip) {
			return s, true
		}
	}
	return SegmentPlan{}, false
}

// View returns the plan as seen from one segment: Subnet, Gateway, Bridge,
// DHCP and Docker are that segment's, and Nodes, Reserved and Segments hold
// only what is on it. Code that handles one bridge at a time takes a view.
func (p *Plan) View(name string) *Plan {
	s, ok := p.Segment(name)
	if !ok {
		s = p.segmentPlan(MainSegment)
	}
	v := *p
	v.Subnet, v.Gateway, v.Bridge, v.DHCP, v.Docker = s.Subnet, s.Gateway, s.Bridge, s.DHCP, s.Docker
	v.Segments = []SegmentPlan{s}
	v.Nodes = nil
	for _, n := range p.Nodes {
		if n.Segment == s.Name || (n.Segment == "" && s.Name == MainSegment) {
			v.Nodes = append(v.Nodes, n)
		}
	}
	v.Reserved = nil
	for _, r := range p.Reserved {
		if s.Subnet.Contains(r.IP) {
			v.Reserved = append(v.Reserved, r)
		}
	}
	return &v
}
