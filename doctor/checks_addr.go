package doctor

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"hybridlab/topology"
)

// owner is something on the host that holds an IPv4 prefix.
type owner struct {
	what   string // "address on eth1", "Docker network x", ...
	prefix netip.Prefix
	fix    string
	link   string // interface it sits on, if any
	net    string // docker or libvirt network name, if any
	docker bool   // net is a Docker network
	// idle is set for a defined libvirt network that is not running: it
	// clashes only once started.
	idle bool
}

// severity is Warn for an idle libvirt network and for an interface prefix
// wider than want (the lab's more specific route wins; only remote hosts in
// that range become unreachable), else Error.
func (o owner) severity(want netip.Prefix) Severity {
	if o.idle || (o.net == "" && o.prefix.Bits() < want.Bits()) {
		return Warn
	}
	return Error
}

// prefixOwners lists every IPv4 prefix in use on the host: addresses,
// routes (not default routes), Docker networks and libvirt networks.
func prefixOwners(s *HostState) []owner {
	var out []owner
	withAddr := map[string]bool{}
	for _, a := range s.Addrs {
		if !a.Prefix.Addr().Is4() {
			continue
		}
		withAddr[a.Link] = true
		out = append(out, owner{
			what:   fmt.Sprintf("address %s on %s", a.Prefix, a.Link),
			prefix: a.Prefix.Masked(), link: a.Link,
			fix: fmt.Sprintf("ip addr del %s dev %s", a.Prefix, a.Link),
		})
	}
	for _, r := range s.Routes {
		if !r.Dst.Addr().Is4() || r.Dst.Bits() == 0 || withAddr[r.Link] {
			continue
		}
		out = append(out, owner{
			what:   fmt.Sprintf("route %s dev %s", r.Dst, r.Link),
			prefix: r.Dst, link: r.Link,
			fix: fmt.Sprintf("ip route del %s dev %s", r.Dst, r.Link),
		})
	}
	for _, n := range s.Docker.Networks {
		for _, p := range n.Subnets {
			out = append(out, owner{
				what:   fmt.Sprintf("Docker network %q (%s, bridge %s)", n.Name, p, n.Bridge),
				prefix: p, link: n.Bridge, net: n.Name, docker: true,
				fix: "docker network rm " + n.Name,
			})
		}
	}
	for _, n := range s.Libvirt {
		for _, p := range n.Prefixes {
			state := "active"
			if !n.Active {
				state = "inactive"
			}
			out = append(out, owner{
				what: fmt.Sprintf("libvirt network %q (%s, bridge %s, %s)", n.Name, p,
					n.Bridge, state),
				prefix: p.Masked(), link: n.Bridge, net: n.Name, idle: !n.Active,
				fix: fmt.Sprintf("virsh -c qemu:///system net-destroy %s", n.Name),
			})
		}
	}
	return out
}

// checkSubnetOverlap finds host objects other than the lab's own bridges
// and networks that hold part of a lab segment's subnet, and names each
// owner.
func checkSubnetOverlap(plan *topology.Plan, s *HostState) []Finding {
	return perSegment(plan, func(v *topology.Plan) []Finding {
		var out []Finding
		for _, o := range prefixOwners(s) {
			if !o.prefix.Overlaps(v.Subnet) || ownedByLab(plan, o) {
				continue
			}
			out = append(out, Finding{
				ID:       IDSubnetOverlap,
				Severity: o.severity(v.Subnet),
				Object:   o.what,
				Evidence: fmt.Sprintf("%s overlaps the lab subnet %s", o.prefix, v.Subnet),
				Cost: "two owners of one range: replies go to the wrong interface, or " +
					"`docker network create` fails with \"Pool overlaps\"",
				Fix: fmt.Sprintf("set %s, or remove the owner: %s",
					segmentField(segmentOf(v), "subnet: "+freeSubnet(s, plan, v.Subnet.Bits())),
					o.fix),
			})
		}
		return out
	})
}

// segmentOf names the one segment of a view.
func segmentOf(view *topology.Plan) string {
	if len(view.Segments) == 1 {
		return view.Segments[0].Name
	}
	return topology.MainSegment
}

// ownedByLab reports whether o is one of the lab's own bridges or Docker
// networks, or its management network; a misbound lab network is
// ENDPOINT_DRIFT's business.
func ownedByLab(plan *topology.Plan, o owner) bool {
	if isLabBridge(plan, o.link) || (o.docker && isLabNetwork(plan, o.net)) {
		return true
	}
	return (!o.docker && o.net == plan.Management.Network) || o.link == plan.Management.Bridge
}

// checkMgmtOverlap finds the management subnet clashing with a lab
// segment's subnet or any host object other than the lab's management
// network.
func checkMgmtOverlap(plan *topology.Plan, s *HostState) []Finding {
	m := plan.Management
	var out []Finding
	for _, sub := range plan.Subnets() {
		if m.Subnet.Overlaps(sub) {
			out = append(out, mgmtFinding(plan, s, owner{what: "lab subnet " + sub.String(),
				prefix: sub}))
		}
	}
	for _, o := range prefixOwners(s) {
		// The lab's own objects are covered by the lab-subnet findings above.
		if !o.prefix.Overlaps(m.Subnet) || ownedByLab(plan, o) {
			continue
		}
		out = append(out, mgmtFinding(plan, s, o))
	}
	return out
}

func mgmtFinding(plan *topology.Plan, s *HostState, o owner) Finding {
	fix := fmt.Sprintf("set `management: {subnet: %s}` in lab.yaml",
		freeSubnet(s, plan, plan.Management.Subnet.Bits()))
	if o.fix != "" {
		fix += ", or remove the owner: " + o.fix
	}
	return Finding{
		ID:       IDMgmtOverlap,
		Severity: o.severity(plan.Management.Subnet),
		Object:   o.what,
		Evidence: fmt.Sprintf("%s overlaps the management subnet %s (libvirt network %s)",
			o.prefix, plan.Management.Subnet, plan.Management.Network),
		Cost: "`virsh net-start " + plan.Management.Network + "` fails (\"already in use\") " +
			"or Vagrant reaches the wrong host over SSH",
		Fix: fix,
	}
}

// freeSubnet suggests a private prefix of the given size that overlaps
// nothing on the host, no segment's subnet and not the management subnet.
func freeSubnet(s *HostState, plan *topology.Plan, bits int) string {
	owners := prefixOwners(s)
	for _, block := range []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
	} {
		if bits < block.Bits() {
			continue
		}
		step := uint32(1) << (32 - bits)
		first := u32(block.Addr())
		for v := first; block.Contains(addrOf(v)); v += step {
			p := netip.PrefixFrom(addrOf(v), bits)
			if !overlapsLab(plan, p) && !p.Overlaps(plan.Management.Subnet) &&
				!overlapsAny(p, owners) {
				return p.String()
			}
			if v+step < v {
				break
			}
		}
	}
	return "<a free prefix>"
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func addrOf(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func overlapsAny(p netip.Prefix, owners []owner) bool {
	for _, o := range owners {
		if o.prefix.Overlaps(p) {
			return true
		}
	}
	return false
}

// checkIfnameTooLong finds interface names of the plan (every segment's
// bridge, and the bridge option of every lab Docker network) that Linux
// would refuse.
func checkIfnameTooLong(plan *topology.Plan, s *HostState) []Finding {
	names := []struct{ name, field string }{
		{plan.Bridge.Name, "bridge"},
		{plan.Management.Bridge, "management.bridge"},
	}
	for _, i := range plan.Interfaces {
		names = append(names, struct{ name, field string }{i.Name, i.Owner})
	}
	for _, n := range s.Docker.Networks {
		if isLabNetwork(plan, n.Name) && n.Bridge != "" {
			names = append(names, struct{ name, field string }{n.Bridge,
				"Docker network " + n.Name + " com.docker.network.bridge.name"})
		}
	}
	var out []Finding
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n.name] {
			continue
		}
		seen[n.name] = true
		if ifnameOK(n.name) {
			continue
		}
		out = append(out, Finding{
			ID:       IDIfnameTooLong,
			Severity: Error,
			Object:   n.field + " " + n.name,
			Evidence: fmt.Sprintf("%q is %d bytes; Linux interface names are at most %d bytes "+
				"of ASCII without '/', ':' or spaces", n.name, len(n.name), topology.MaxIfName),
			Cost: "creating the interface fails (libvirt says \"Numerical result out of range\")",
			Fix:  ifnameFix(n.field, n.name),
		})
	}
	return out
}

func ifnameOK(name string) bool {
	if name == "" || len(name) > topology.MaxIfName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c > '~' || c == '/' || c == ':' {
			return false
		}
	}
	return true
}

func ifnameFix(field, name string) string {
	short := name
	if len(short) > topology.MaxIfName {
		short = short[:topology.MaxIfName]
	}
	switch field {
	case "bridge", "lab bridge":
		return fmt.Sprintf("set `bridge: %s` in lab.yaml (at most 15 bytes)", short)
	case "management.bridge":
		return fmt.Sprintf("set `management: {bridge: %s}` in lab.yaml (at most 15 bytes)", short)
	}
	if seg, ok := strings.CutPrefix(field, "lab bridge of segment "); ok {
		return "set " + segmentField(seg, "bridge: "+short) + " (at most 15 bytes)"
	}
	if net, ok := strings.CutPrefix(field, "Docker network "); ok {
		net, _, _ = strings.Cut(net, " ")
		return fmt.Sprintf("docker network rm %s && go run ./setup up "+
			"(recreates it on the plan's bridge)", net)
	}
	return fmt.Sprintf("rename %q to at most 15 bytes in lab.yaml", name)
}
