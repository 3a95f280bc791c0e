package doctor

import (
	"fmt"
	"net/netip"
	"strings"

	"hybridlab/topology"
)

// guardTag is the comment the lab's guard puts on the rules it adds to
// DOCKER-USER (provision/guard.Tag), so `down` finds and removes them.
func guardTag(lab string) string { return "hybridlab:" + lab }

// checkIPForward finds a routed lab on a host that does not route: with
// net.ipv4.ip_forward=0 nothing passes between the lab's segments.
func checkIPForward(plan *topology.Plan, s *HostState) []Finding {
	if !plan.Routed() || s.IPForward == nil || *s.IPForward == 1 {
		return nil
	}
	f := Finding{
		ID:       IDIPForward,
		Severity: Error,
		Object:   "net.ipv4.ip_forward",
		Evidence: fmt.Sprintf("net.ipv4.ip_forward=%d; the lab has %d segments (bridges %s) "+
			"that the host routes between", *s.IPForward, len(plan.AllSegments()),
			bridgeList(plan)),
		Cost: "nodes reach their own segment and the host, but nothing on the other " +
			"segments: the host does not forward between the lab bridges",
		Fix: "sysctl -w net.ipv4.ip_forward=1 (or run `go run ./setup up` again, which sets it)",
	}
	if s.Phase == PhaseBefore {
		f.Severity = Warn
		f.Fix = "`go run ./setup up` sets it; by hand: sysctl -w net.ipv4.ip_forward=1"
	}
	return []Finding{f}
}

// checkSegmentForward finds ordered pairs of lab bridges that no live IPv4
// rule lets the host route between. Docker's FORWARD policy is DROP and its
// isolation chains drop traffic between its bridge networks, so the guard
// puts `-i brA -o brB -j ACCEPT` (tagged hybridlab:LAB) into DOCKER-USER
// for every ordered pair; without Docker a FORWARD policy of DROP needs the
// same accepts in FORWARD.
func checkSegmentForward(plan *topology.Plan, s *HostState) []Finding {
	fw := s.IPv4
	if !plan.Routed() || !fw.Read || (!fw.DockerUser && fw.ForwardPolicy != "DROP") {
		return nil
	}
	var out []Finding
	for _, pair := range segmentPairs(plan) {
		in, to := pair.From.Bridge.Name, pair.To.Bridge.Name
		if pairAccept(fw.Rules, in, to) != "" {
			continue
		}
		out = append(out, segmentForwardFinding(plan, s, pair))
	}
	return out
}

func segmentForwardFinding(plan *topology.Plan, s *HostState, pair segmentPair) Finding {
	in, to := pair.From.Bridge.Name, pair.To.Bridge.Name
	chain, cause := "FORWARD", "the FORWARD policy is DROP"
	if s.IPv4.DockerUser {
		chain = "DOCKER-USER"
		cause = "Docker's FORWARD policy DROP and its isolation of bridge networks"
	}
	fix := fmt.Sprintf("iptables -I %s -i %s -o %s -m comment --comment %q -j ACCEPT",
		chain, in, to, guardTag(plan.Lab))
	sev := Error
	if s.Phase == PhaseBefore {
		sev = Warn
		fix = "`go run ./setup up` installs it; by hand: " + fix
	} else {
		fix = "run `go run ./setup up` again (the guard puts it back), or by hand: " + fix
	}
	return Finding{
		ID:       IDSegmentForward,
		Severity: sev,
		Object:   fmt.Sprintf("iptables %s / %s -> %s", chain, in, to),
		Evidence: fmt.Sprintf("no live ACCEPT for -i %s -o %s (segment %s to segment %s); "+
			"cause: %s", in, to, pair.From.Name, pair.To.Name, cause),
		Cost: fmt.Sprintf("packets the host routes from %s (%s) to %s (%s) are dropped: "+
			"nodes of segment %s cannot reach segment %s", pair.From.Subnet, in,
			pair.To.Subnet, to, pair.From.Name, pair.To.Name),
		Fix: fix,
	}
}

// natRule is one `-A POSTROUTING` rule of the nat table, as far as the
// segment check needs it.
type natRule struct {
	text           string
	src, dst       netip.Prefix
	srcNot, dstNot bool
	out            string
	outNot         bool
	target         string
	// narrow is true when the rule matches on more than addresses and the
	// output interface (a protocol, a port, a mark): it then applies to
	// part of the traffic only.
	narrow bool
}

// parseNATRule reads an `iptables -S` rule line; ok is false for lines it
// cannot read.
func parseNATRule(line string) (natRule, bool) {
	r := natRule{text: line}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "-A" {
		return r, false
	}
	not := false
	for i := 2; i < len(f); i++ {
		opt := f[i]
		if opt == "!" {
			not = true
			continue
		}
		val := ""
		if i+1 < len(f) {
			val = f[i+1]
		}
		switch opt {
		case "-s", "-d":
			p, err := parseAddrOrPrefix(val)
			if err != nil {
				return r, false
			}
			if opt == "-s" {
				r.src, r.srcNot = p, not
			} else {
				r.dst, r.dstNot = p, not
			}
			i++
		case "-o":
			r.out, r.outNot = val, not
			i++
		case "-j":
			r.target = val
			i++
		case "-m":
			r.narrow = r.narrow || val != "comment"
			i++
		case "--comment":
			i += commentLen(f[i+1:])
		default:
			r.narrow = true
		}
		not = false
	}
	return r, r.target != ""
}

func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// prefixMay reports whether some packet with an address in want matches
// the rule's address test (p, not); prefixMust whether every such packet
// does. An absent test matches everything.
func prefixMay(p netip.Prefix, not bool, want netip.Prefix) bool {
	if !p.IsValid() {
		return true
	}
	if not {
		return !(p.Bits() <= want.Bits() && p.Contains(want.Addr()))
	}
	return p.Overlaps(want)
}

func prefixMust(p netip.Prefix, not bool, want netip.Prefix) bool {
	if !p.IsValid() {
		return true
	}
	if not {
		return !p.Overlaps(want)
	}
	return p.Bits() <= want.Bits() && p.Contains(want.Addr())
}

// ifMatch reports whether interface name dev matches the rule's -o test;
// iptables reads a trailing '+' as a prefix.
func ifMatch(pattern string, not bool, dev string) bool {
	if pattern == "" {
		return true
	}
	hit := pattern == dev
	if p, ok := strings.CutSuffix(pattern, "+"); ok {
		hit = strings.HasPrefix(dev, p)
	}
	return hit != not
}

// snatFor returns the first rule of POSTROUTING that rewrites the source of
// traffic routed from pair.From to pair.To (MASQUERADE or SNAT), unless a
// rule before it lets all of that traffic pass untouched (RETURN or
// ACCEPT).
func snatFor(rules []string, pair segmentPair) (natRule, bool) {
	from, to, dev := pair.From.Subnet.Masked(), pair.To.Subnet.Masked(), pair.To.Bridge.Name
	for _, line := range rules {
		r, ok := parseNATRule(line)
		if !ok || !ifMatch(r.out, r.outNot, dev) {
			continue
		}
		switch r.target {
		case "RETURN", "ACCEPT":
			if !r.narrow && prefixMust(r.src, r.srcNot, from) && prefixMust(r.dst, r.dstNot, to) {
				return natRule{}, false
			}
		case "MASQUERADE", "SNAT":
			if prefixMay(r.src, r.srcNot, from) && prefixMay(r.dst, r.dstNot, to) {
				return r, true
			}
		}
	}
	return natRule{}, false
}

// checkSegmentSNAT finds nat rules that rewrite the source of traffic the
// host routes between lab segments: Docker's masquerade for a network's
// subnet (`-s SUBNET ! -o BRIDGE -j MASQUERADE`) catches every packet that
// leaves through another bridge, so nodes of the other segments see the
// host instead of the sender. A routed lab creates its Docker networks with
// masquerade off.
func checkSegmentSNAT(plan *topology.Plan, s *HostState) []Finding {
	if !plan.Routed() || !s.IPv4.NATRead {
		return nil
	}
	var rules []natRule
	pairs := map[string][]segmentPair{}
	for _, pair := range segmentPairs(plan) {
		r, ok := snatFor(s.IPv4.NAT, pair)
		if !ok {
			continue
		}
		if _, seen := pairs[r.text]; !seen {
			rules = append(rules, r)
		}
		pairs[r.text] = append(pairs[r.text], pair)
	}
	var out []Finding
	for _, r := range rules {
		out = append(out, snatFinding(plan, s, r, pairs[r.text]))
	}
	return out
}

func snatFinding(plan *topology.Plan, s *HostState, r natRule, pairs []segmentPair) Finding {
	sev := Error
	if s.Phase == PhaseBefore {
		sev = Warn
	}
	var routes, excs []string
	for _, p := range pairs {
		routes = append(routes, p.From.Name+" -> "+p.To.Name)
		excs = append(excs, fmt.Sprintf("iptables -t nat -I POSTROUTING -s %s -d %s -j RETURN",
			p.From.Subnet.Masked(), p.To.Subnet.Masked()))
	}
	fix := strings.Join(excs, " && ")
	if n, ok := labNetworkOf(plan, s, r); ok {
		fix = fmt.Sprintf("docker rm -f the containers on %s, then docker network rm %s && "+
			"go run ./setup up (recreates it with com.docker.network.bridge."+
			"enable_ip_masquerade=false); or by hand: %s", n.Name, n.Name, fix)
	}
	return Finding{
		ID:       IDSegmentSNAT,
		Severity: sev,
		Object:   "iptables nat POSTROUTING " + r.target + snatOwner(plan, s, r),
		Evidence: fmt.Sprintf("%q rewrites the source of traffic the host routes between "+
			"lab segments (%s)", r.text, strings.Join(routes, ", ")),
		Cost: "nodes on the receiving segment see the host's gateway address instead of the " +
			"sender: replies work, but addresses do not survive routing (per-peer figures, " +
			"logs and the nodes' own filters see the host)",
		Fix: fix,
	}
}

// labNetworkOf returns the lab Docker network whose subnet the rule's
// source is.
func labNetworkOf(plan *topology.Plan, s *HostState, r natRule) (DockerNetwork, bool) {
	for _, n := range s.Docker.Networks {
		if !isLabNetwork(plan, n.Name) {
			continue
		}
		for _, p := range n.Subnets {
			if r.src.IsValid() && !r.srcNot && p.Masked() == r.src {
				return n, true
			}
		}
	}
	return DockerNetwork{}, false
}

func snatOwner(plan *topology.Plan, s *HostState, r natRule) string {
	if n, ok := labNetworkOf(plan, s, r); ok {
		return " (Docker network " + n.Name + ")"
	}
	if r.src.IsValid() && !r.srcNot {
		return " of " + r.src.String()
	}
	return ""
}
