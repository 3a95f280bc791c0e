package topology

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Limits that validation enforces.
const (
	// MaxIfName is the kernel's limit on interface names (IFNAMSIZ-1).
	MaxIfName = 15
	// MaxLabName keeps every name derived from the lab name (Docker
	// network, libvirt domain, nft table) short.
	MaxLabName = 12
	// MinMTU and MaxMTU bound the bridge MTU (IPv4 minimum, jumbo maximum).
	MinMTU = 576
	MaxMTU = 9000
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// WithDefaults returns a copy of l with every empty field set to its
// default. Ranges default to slices of the subnet: Docker takes the upper
// half, VMs a block from the tenth address of the lower half.
func (l *Lab) WithDefaults() *Lab {
	c := *l
	c.VMs = append([]VM(nil), l.VMs...)
	c.Containers = append([]Container(nil), l.Containers...)
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Bridge == "" {
		c.Bridge = "br-" + c.Name
	}
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.Management.Subnet == "" {
		c.Management.Subnet = DefaultMgmtSubnet
	}
	if c.Management.Bridge == "" {
		c.Management.Bridge = mgmtBridgeName(c.Name)
	}
	c.Domain = strings.TrimSuffix(strings.ToLower(c.Domain), ".")
	if subnet, err := netip.ParsePrefix(c.Subnet); err == nil && subnet.Addr().Is4() {
		defaultRanges(&c, subnet.Masked())
	}
	for i := range c.VMs {
		vm := &c.VMs[i]
		if vm.Role == "" {
			vm.Role = RoleBase
		}
		if vm.Memory == 0 {
			vm.Memory = DefaultVMMemory
		}
		if vm.CPUs == 0 {
			vm.CPUs = DefaultVMCPUs
		}
	}
	for i := range c.Containers {
		if c.Containers[i].Image == "" {
			c.Containers[i].Image = DefaultImage
		}
		if c.Containers[i].Segment == "" {
			c.Containers[i].Segment = MainSegment
		}
	}
	for i := range c.VMs {
		if c.VMs[i].Segment == "" {
			c.VMs[i].Segment = MainSegment
		}
	}
	c.Segments = segmentDefaults(c.Name, l.Segments)
	return &c
}

// mgmtBridgeName derives the management bridge's name from the lab name:
// "virbr-NAME", or "vb-NAME" when that would pass the kernel's 15-byte limit
// (a lab name of 10 to 12 bytes).
func mgmtBridgeName(lab string) string {
	if name := "virbr-" + lab; len(name) <= MaxIfName {
		return name
	}
	return "vb-" + lab
}

func defaultRanges(c *Lab, subnet netip.Prefix) {
	if c.Gateway == "" && subnet.Bits() <= 30 {
		c.Gateway = subnet.Addr().Next().String()
	}
	if subnet.Bits() > 29 {
		return
	}
	half := prefixSize(subnet) / 2
	if c.DockerRange == "" {
		docker := netip.PrefixFrom(offset(subnet.Addr(), half), subnet.Bits()+1)
		// A gateway in the upper half (say .254) keeps the half of it without the gateway.
		if gw, err := netip.ParseAddr(c.Gateway); err == nil && docker.Contains(gw) &&
			docker.Bits() < 30 {
			lower := netip.PrefixFrom(docker.Addr(), docker.Bits()+1)
			upper := netip.PrefixFrom(offset(docker.Addr(), half/2), docker.Bits()+1)
			docker = lower
			if lower.Contains(gw) {
				docker = upper
			}
		}
		c.DockerRange = docker.String()
	}
	if c.DHCPRange == "" {
		first := offset(subnet.Addr(), max(2, min(10, half/4)))
		last := offset(subnet.Addr(), min(99, half-1))
		c.DHCPRange = first.String() + "-" + last.String()
	}
}

// Validate checks a lab that has had its defaults applied. It reports every
// problem it finds, one per line, each naming the object and the fix. It
// reads nothing from the host; see HostConflicts for that.
func (l *Lab) Validate() error {
	v := &validator{}
	v.names(l)
	main := l.segmentLabs()[0]
	subnet, ok := v.subnet(main)
	if ok {
		v.ranges(main, subnet)
		v.management(l, subnet)
		v.nodes(main, subnet)
		v.macs(l)
	}
	v.ifnames(l)
	v.segments(l)
	v.policies(l)
	if l.MTU < MinMTU || l.MTU > MaxMTU {
		v.addf("mtu %d: out of range; use %d to %d", l.MTU, MinMTU, MaxMTU)
	}
	return v.err()
}

type validator struct {
	problems []string
	// segNames are the lab's segment names, main first, for policies.
	segNames []string
}

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(v.problems, "\n  "))
}

// Problems splits an error from Load, Validate or NewPlan into its
// one-line problems, without the "invalid lab" marker.
func Problems(err error) []string {
	if err == nil {
		return nil
	}
	marker := ErrInvalid.Error() + ": "
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasSuffix(line, ErrInvalid.Error()+":") {
			continue
		}
		// A Load error keeps its file name in front: "lab.yaml: unknown …".
		if before, after, ok := strings.Cut(line, marker); ok {
			line = before + after
		}
		out = append(out, line)
	}
	return out
}

func (v *validator) names(l *Lab) {
	if !dnsLabel.MatchString(l.Name) || len(l.Name) > MaxLabName {
		v.addf("lab name %q: not a DNS label of at most %d bytes; use a-z, 0-9 and '-'",
			l.Name, MaxLabName)
	}
	for _, label := range strings.Split(l.Domain, ".") {
		if !dnsLabel.MatchString(label) {
			v.addf("domain %q: label %q is not a valid DNS label; use a-z, 0-9 and '-'",
				l.Domain, label)
			break
		}
	}
	seen := map[string]string{}
	check := func(kind, name string) {
		if name == "true" || name == "false" {
			v.addf("%s %q: YAML reads y, yes, on (n, no, off) as %s; quote the name, "+
				"e.g. name: \"on\"", kind, name, name)
			return
		}
		if !dnsLabel.MatchString(name) {
			v.addf("%s %q: name is not a valid DNS label; use 1-63 of a-z, 0-9 and '-', "+
				"not starting or ending with '-'", kind, name)
		}
		if prev, dup := seen[name]; dup {
			v.addf("%s %q: name already used by a %s; give each node its own name", kind, name, prev)
		}
		seen[name] = kind
	}
	for _, vm := range l.VMs {
		check("vm", vm.Name)
		switch vm.Role {
		case RoleBase, RoleDocker, RoleObserver:
		default:
			v.addf("vm %q: unknown role %q; use base, docker or observer", vm.Name, vm.Role)
		}
		if vm.Memory < 256 {
			v.addf("vm %q: memory %d MiB is too small to boot; use at least 256", vm.Name, vm.Memory)
		}
		if vm.CPUs < 1 {
			v.addf("vm %q: cpus %d; use at least 1", vm.Name, vm.CPUs)
		}
	}
	published := map[string]string{}
	for _, c := range l.Containers {
		check("container", c.Name)
		for _, p := range c.Publish {
			hostPort, err := checkPublish(p)
			if err != nil {
				v.addf("container %q: publish %q: %v", c.Name, p, err)
				continue
			}
			if prev, dup := published[hostPort]; dup {
				v.addf("container %q: publish %q: host port %s is already published by "+
					"container %q; pick another host port", c.Name, p, hostPort, prev)
			}
			published[hostPort] = c.Name
		}
	}
	if len(l.VMs)+len(l.Containers) == 0 {
		v.addf("lab %q: declares no vms and no containers; add at least one node", l.Name)
	}
}

func (v *validator) subnet(l *Lab) (netip.Prefix, bool) {
	subnet, err := netip.ParsePrefix(l.Subnet)
	switch {
	case l.Subnet == "":
		v.addf("subnet: missing; set it, e.g. subnet: 10.0.1.0/24")
		return subnet, false
	case err != nil || !subnet.Addr().Is4():
		v.addf("subnet %q: not an IPv4 CIDR; write it like 10.0.1.0/24", l.Subnet)
		return subnet, false
	case subnet.Masked() != subnet:
		v.addf("subnet %q: host bits are set; use %s", l.Subnet, subnet.Masked())
		return subnet, false
	case !isPrivate(subnet):
		v.addf("subnet %s: not a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16); "+
			"a lab must not shadow real addresses, pick one inside those", subnet)
		return subnet, false
	case subnet.Bits() > 29:
		v.addf("subnet %s: too small for a lab; use a /29 or larger (a /24 is usual)", subnet)
		return subnet, false
	}
	gw, err := netip.ParseAddr(l.Gateway)
	switch {
	case err != nil:
		v.addf("gateway %q: not an IPv4 address; use a host address of %s", l.Gateway, subnet)
	case !subnet.Contains(gw) || gw == subnet.Addr() || gw == broadcast(subnet):
		v.addf("gateway %s: not a host address of subnet %s; pick one inside it", gw, subnet)
	}
	return subnet, true
}

func (v *validator) ranges(l *Lab, subnet netip.Prefix) {
	gw, _ := netip.ParseAddr(l.Gateway)
	whole := rangeOf(subnet)
	dhcp, err := parseRange(l.DHCPRange)
	if err != nil {
		v.addf("dhcp_range %q: %v", l.DHCPRange, err)
	}
	docker, derr := netip.ParsePrefix(l.DockerRange)
	if derr != nil || !docker.Addr().Is4() || docker.Masked() != docker {
		v.addf("docker_range %q: not an IPv4 CIDR with its host bits clear, e.g. 10.0.1.128/25",
			l.DockerRange)
	}
	if err == nil {
		if !whole.Contains(dhcp.First) || !whole.Contains(dhcp.Last) {
			v.addf("dhcp_range %s: not inside subnet %s; pick a block inside it", dhcp, subnet)
		} else if dhcp.Contains(subnet.Addr()) || dhcp.Contains(broadcast(subnet)) {
			v.addf("dhcp_range %s: includes the network or broadcast address of %s", dhcp, subnet)
		}
		if gw.IsValid() && dhcp.Contains(gw) {
			v.addf("dhcp_range %s: includes the gateway %s; move the range or the gateway", dhcp, gw)
		}
	}
	if derr == nil && docker.Masked() == docker {
		dr := rangeOf(docker)
		if !subnet.Contains(docker.Addr()) || docker.Bits() < subnet.Bits() {
			v.addf("docker_range %s: not inside subnet %s; pick a slice of it", docker, subnet)
		}
		if gw.IsValid() && dr.Contains(gw) {
			v.addf("docker_range %s: includes the gateway %s; move the range or the gateway", docker, gw)
		}
		if err == nil && overlaps(dr, dhcp) {
			v.addf("docker_range %s overlaps dhcp_range %s; VMs and containers need disjoint slices",
				docker, dhcp)
		}
	}
	v.reserved(l, subnet, gw)
}

func (v *validator) reserved(l *Lab, subnet netip.Prefix, gw netip.Addr) {
	seen := map[netip.Addr]bool{}
	for _, r := range l.Reserved {
		ip, err := netip.ParseAddr(r.IP)
		switch {
		case err != nil || !ip.Is4() || !subnet.Contains(ip):
			v.addf("reserved %q: not an address in subnet %s; list only addresses of the subnet",
				r.IP, subnet)
		case ip == gw || ip == subnet.Addr() || ip == broadcast(subnet):
			v.addf("reserved %s: is the %s, which is reserved already; remove the entry",
				ip, specialName(ip, subnet, gw))
		case seen[ip]:
			v.addf("reserved %s: listed twice; remove one entry", ip)
		}
		seen[ip] = true
	}
}

func specialName(ip netip.Addr, subnet netip.Prefix, gw netip.Addr) string {
	switch ip {
	case gw:
		return "gateway"
	case subnet.Addr():
		return "network address of " + subnet.String()
	}
	return "broadcast address of " + subnet.String()
}

func (v *validator) management(l *Lab, subnet netip.Prefix) {
	m, err := netip.ParsePrefix(l.Management.Subnet)
	if err != nil || !m.Addr().Is4() || m.Bits() > 28 {
		v.addf("management.subnet %q: want an IPv4 CIDR of /28 or larger, e.g. 10.0.9.0/24",
			l.Management.Subnet)
		return
	}
	if m.Masked() != m {
		v.addf("management.subnet %q: host bits are set; use %s", l.Management.Subnet, m.Masked())
	}
	if !isPrivate(m.Masked()) {
		v.addf("management.subnet %s: not a private range (10.0.0.0/8, 172.16.0.0/12, "+
			"192.168.0.0/16); pick one inside those", m)
	}
	if room := prefixSize(m) - mgmtFirstHost - 1; len(l.VMs) > room {
		v.addf("management.subnet %s: its DHCP pool has %d addresses for %d vms; "+
			"use a larger management subnet", m, room, len(l.VMs))
	}
	if m.Overlaps(subnet) {
		v.addf("management.subnet %s overlaps subnet %s; give the management network its own range",
			m, subnet)
	}
}

// claimant is what already holds an address, and how to resolve a clash
// with it.
type claimant struct{ what, fix string }

// fixedClaims are the addresses no node may pin: the subnet's network,
// gateway and broadcast addresses and the lab's reserved entries.
func fixedClaims(l *Lab, subnet netip.Prefix, gw netip.Addr) map[netip.Addr]claimant {
	owner := map[netip.Addr]claimant{
		subnet.Addr():     {"the network address of " + subnet.String(), "pin another ip"},
		broadcast(subnet): {"the broadcast address of " + subnet.String(), "pin another ip"},
	}
	if gw.IsValid() {
		owner[gw] = claimant{"the gateway", "pin another ip or move the gateway"}
	}
	for _, r := range l.Reserved {
		ip, err := netip.ParseAddr(r.IP)
		if err != nil {
			continue
		}
		what := fmt.Sprintf("reserved entry %s", ip)
		if r.Note != "" {
			what += fmt.Sprintf(" (%q)", r.Note)
		}
		owner[ip] = claimant{what, "pin another ip or remove the reserved entry"}
	}
	return owner
}

func (v *validator) nodes(l *Lab, subnet netip.Prefix) {
	dhcp, derr := parseRange(l.DHCPRange)
	docker, perr := netip.ParsePrefix(l.DockerRange)
	gw, _ := netip.ParseAddr(l.Gateway)
	owner := fixedClaims(l, subnet, gw)
	claim := func(what string, ip netip.Addr) {
		if prev, dup := owner[ip]; dup {
			v.addf("%s: ip %s is already used by %s; %s", what, ip, prev.what, prev.fix)
			return
		}
		owner[ip] = claimant{what, "give each node its own ip"}
	}
	for _, vm := range l.VMs {
		what := fmt.Sprintf("vm %q", vm.Name)
		if vm.IP == "" {
			continue
		}
		ip, err := netip.ParseAddr(vm.IP)
		switch {
		case err != nil || !ip.Is4():
			v.addf("%s: ip %q is not an IPv4 address; write it like 10.0.1.20", what, vm.IP)
		case derr == nil && !dhcp.Contains(ip):
			v.addf("%s: ip %s is outside dhcp_range %s; pin an address inside it or widen it",
				what, ip, dhcp)
		default:
			claim(what, ip)
		}
	}
	for _, c := range l.Containers {
		what := fmt.Sprintf("container %q", c.Name)
		if c.IP == "" {
			continue
		}
		ip, err := netip.ParseAddr(c.IP)
		switch {
		case err != nil || !ip.Is4():
			v.addf("%s: ip %q is not an IPv4 address; write it like 10.0.1.200", what, c.IP)
		case perr == nil && !docker.Contains(ip):
			v.addf("%s: ip %s is outside docker_range %s; pin an address inside it or widen it",
				what, ip, docker)
		default:
			claim(what, ip)
		}
	}
	v.capacity(l, subnet, gw)
}

// capacity checks that each range has a free address for every node that
// draws from it. Reserved entries, the gateway and the subnet's network and
// broadcast addresses inside a range are not free.
func (v *validator) capacity(l *Lab, subnet netip.Prefix, gw netip.Addr) {
	fixed := fixedClaims(l, subnet, gw)
	whole := rangeOf(subnet)
	dhcp, err := parseRange(l.DHCPRange)
	if err == nil && whole.Contains(dhcp.First) && whole.Contains(dhcp.Last) {
		free, held := room(dhcp, fixed)
		if len(l.VMs) > free {
			v.addf("dhcp_range %s: %d free addresses%s for %d vms; widen the range or "+
				"declare fewer vms", dhcp, free, heldNote(held), len(l.VMs))
		}
	}
	docker, perr := netip.ParsePrefix(l.DockerRange)
	if perr == nil && docker.Addr().Is4() && subnet.Contains(docker.Addr()) &&
		docker.Bits() >= subnet.Bits() {
		free, held := room(rangeOf(docker), fixed)
		if len(l.Containers) > free {
			v.addf("docker_range %s: %d free addresses%s for %d containers; widen the range or "+
				"declare fewer containers", docker, free, heldNote(held), len(l.Containers))
		}
	}
}

// room counts the addresses of r that no fixed claim holds.
func room(r AddrRange, fixed map[netip.Addr]claimant) (free, held int) {
	for ip := range fixed {
		if r.Contains(ip) {
			held++
		}
	}
	return r.Size() - held, held
}

func heldNote(held int) string {
	if held == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d more held by the gateway, reserved entries or the subnet's "+
		"network/broadcast address)", held)
}

func (v *validator) macs(l *Lab) {
	seen := map[string]string{}
	check := func(what, mac string) {
		if mac == "" {
			return
		}
		hw, err := net.ParseMAC(mac)
		switch {
		case err != nil || len(hw) != 6:
			v.addf("%s: mac %q is not a 6-byte MAC like 52:54:00:12:34:56", what, mac)
			return
		case hw[0]&1 == 1:
			v.addf("%s: mac %s is a multicast address; clear the lowest bit of the first octet",
				what, hw)
			return
		case hw[0]&2 == 0:
			v.addf("%s: mac %s is not locally administered; set bit 1 of the first octet "+
				"(e.g. 02:…) so it cannot clash with a vendor's MAC", what, hw)
			return
		}
		if prev, dup := seen[hw.String()]; dup {
			v.addf("%s: mac %s is already used by %s; give each node its own MAC", what, hw, prev)
		}
		seen[hw.String()] = what
	}
	for _, vm := range l.VMs {
		check(fmt.Sprintf("vm %q", vm.Name), vm.MAC)
	}
	for _, c := range l.Containers {
		check(fmt.Sprintf("container %q", c.Name), c.MAC)
	}
}

func (v *validator) ifnames(l *Lab) {
	v.ifname("bridge", l.Bridge)
	v.ifname("management.bridge", l.Management.Bridge)
	if l.Bridge == l.Management.Bridge {
		v.addf("management.bridge %q: same as the lab bridge; use another name", l.Bridge)
	}
}

func (v *validator) ifname(field, name string) {
	switch {
	case name == "":
		v.addf("%s: empty interface name; set one", field)
	case len(name) > MaxIfName:
		v.addf("%s %q: %d bytes, but Linux interface names are limited to %d; use a shorter name",
			field, name, len(name), MaxIfName)
	case strings.ContainsAny(name, "/: \t") || !isASCII(name):
		v.addf("%s %q: interface names must be ASCII without '/', ':' or spaces", field, name)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkPublish checks a "HOST:CONTAINER[/tcp|udp]" spec and returns its
// host side as "PORT/PROTO".
func checkPublish(p string) (string, error) {
	spec, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return "", errors.New("protocol must be tcp or udp, e.g. 8080:80/tcp")
	}
	host, ctr, ok := strings.Cut(spec, ":")
	if !ok {
		return "", errors.New("want HOST:CONTAINER[/tcp|udp], e.g. 8080:80/tcp")
	}
	for _, port := range []string{host, ctr} {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", fmt.Errorf("port %q: use a number from 1 to 65535, "+
				"e.g. 8080:80/tcp", port)
		}
	}
	return host + "/" + proto, nil
}

// privateRanges are the IPv4 ranges a lab may use (RFC 1918).
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

func isPrivate(p netip.Prefix) bool {
	for _, r := range privateRanges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
