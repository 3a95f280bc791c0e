// Package guard owns the lab's nftables table, which keeps lab traffic on
// the host, and the accept rules the lab needs in Docker's DOCKER-USER
// chain so bridged lab traffic survives Docker's FORWARD policy.
//
// # Egress guard: table inet hybridlab_<lab>
//
// Two base chains, both `type filter`, priority filter - 10 (-10), policy
// accept:
//
//   - egress_forward (hook forward) sees every packet the host routes for
//     a lab node. Packets leaving through a lab bridge return at once; with
//     br_netfilter on, frames switched inside the bridge also pass this hook,
//     with the bridge as both input and output interface, and return here.
//     Anything else that entered through a lab bridge, or carries a lab
//     source address, is counted and dropped.
//   - egress_output sees the host's own packets. Only those with a lab source
//     address (a process bound to the gateway address, say) leaving through
//     an interface other than a lab bridge or lo are counted and dropped.
//
// The guard matches the lab's source prefixes and bridges, never private
// destination ranges, so the host's own traffic (its DNS resolver, apt) is
// untouched. No input chain is needed: traffic from the lab to the host
// itself does not leave the machine.
//
// Priority -10 puts both chains before iptables-nft's filter chains
// (priority 0), so the drop counters see every attempt whatever Docker's
// rules say; in output it still comes after NAT (-100) and rerouting
// (-150), so the output interface is final. A drop in any base chain is
// final; an accept is not, which is why the guard only drops.
//
// With Spec.AllowEgress the same rules count but do not drop.
//
// A consequence to know: while the guard drops, replies from a lab node to
// a connection opened from another machine (a port published on eth0) are
// dropped too; published ports answer only clients on the host itself.
//
// # Bridged traffic and Docker (faults B01, B02, B04)
//
// dockerd sets the iptables FORWARD policy to DROP, and br_netfilter
// (bridge-nf-call-iptables=1) sends frames switched inside the lab bridge
// through that FORWARD chain. An accept in the lab's own table cannot
// cancel a drop in iptables-nft's chain, so the fix has to live in that
// chain: Ensure inserts `-i BR -o BR -j ACCEPT` at the top of DOCKER-USER
// in `ip filter` (and `ip6 filter` when Docker made one there), the chain
// Docker reserves for its users and jumps to first from FORWARD.
//
// The rules are written with google/nftables in the form iptables-nft
// writes them itself (meta iifname/oifname compares, a counter, an accept
// verdict) and carry the comment "hybridlab:<lab>" as rule user data, which
// iptables-nft shows as `-m comment --comment "hybridlab:<lab>"`; checked
// with `iptables -S DOCKER-USER` and `iptables-save`. The comment is how
// Remove finds them. When dockerd is not running there is no DOCKER-USER
// chain and Ensure adds nothing there, and says so; run Ensure again after
// every Docker restart, since dockerd rebuilds its chains.
//
// Every function acts in the network namespace of the calling OS thread.
package guard

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"hybridlab/topology"
)

// TablePrefix starts the name of every lab table; the lab name follows.
const TablePrefix = "hybridlab_"

// TableName is the inet table of the lab called lab.
func TableName(lab string) string { return TablePrefix + lab }

// Tag is the comment carried by every rule the lab puts in a chain it
// does not own (DOCKER-USER).
func Tag(lab string) string { return "hybridlab:" + lab }

// Chain names. Not nft keywords ("fwd" is one).
const (
	ChainForward = "egress_forward"
	ChainOutput  = "egress_output"
	// DockerUserChain is Docker's chain for user rules in ip/ip6 filter.
	DockerUserChain = "DOCKER-USER"
)

// Priority of both lab chains: just before the filter chains.
const Priority = -10

// ChainNAT masquerades lab egress under AllowEgress, at NATPriority: just
// before iptables-nft's POSTROUTING (srcnat, 100).
const (
	ChainNAT    = "egress_nat"
	NATPriority = 99
)

// ErrInvalidSpec is wrapped by Ensure when the spec cannot be applied.
var ErrInvalidSpec = errors.New("invalid guard spec")

// Spec is what the guard protects.
type Spec struct {
	Lab string
	// Table is the inet table's name, TableName(Lab) when empty.
	Table string
	// Bridges are the lab's bridges: the only interfaces lab traffic may
	// leave through, and the ones that get a DOCKER-USER accept.
	Bridges []string
	// Subnets are the lab's source prefixes, IPv4 and IPv6.
	Subnets []netip.Prefix
	// Routed are the bridges of a lab with several segments, between which
	// the host routes: DOCKER-USER gets `-i A -o B` accepts for every
	// ordered pair, since Docker otherwise isolates its networks from each
	// other (DOCKER-ISOLATION) and FORWARD's policy drops the rest.
	Routed []string
	// AllowEgress turns the drops into counters.
	AllowEgress bool
}

// DockerUserPairs lists the (input, output) interface pairs that get an
// accept in DOCKER-USER, in rule order: each bridge to itself, then every
// ordered pair of routed bridges.
func (s Spec) DockerUserPairs() [][2]string {
	var out [][2]string
	for _, b := range s.Bridges {
		out = append(out, [2]string{b, b})
	}
	for _, a := range s.Routed {
		for _, b := range s.Routed {
			if a != b {
				out = append(out, [2]string{a, b})
			}
		}
	}
	return out
}

// SpecFromPlan guards every segment's bridge and subnet and the
// management network's bridge and subnet.
func SpecFromPlan(p *topology.Plan, allowEgress bool) Spec {
	s := Spec{
		Lab:         p.Lab,
		Table:       p.NFTable,
		Bridges:     p.Bridges(),
		Subnets:     p.Subnets(),
		AllowEgress: allowEgress,
	}
	if p.Routed() {
		s.Routed = p.Bridges()
	}
	if p.Management.Bridge != "" && p.Management.Subnet.IsValid() {
		s.Bridges = append(s.Bridges, p.Management.Bridge)
		s.Subnets = append(s.Subnets, p.Management.Subnet.Masked())
	}
	return s
}

func (s Spec) withDefaults() Spec {
	if s.Table == "" {
		s.Table = TableName(s.Lab)
	}
	subnets := make([]netip.Prefix, len(s.Subnets))
	for i, p := range s.Subnets {
		subnets[i] = p.Masked()
	}
	s.Subnets = subnets
	return s
}

func (s Spec) validate() error {
	var problems []string
	if s.Lab == "" {
		problems = append(problems, "lab name is empty")
	}
	if !strings.HasPrefix(s.Table, TablePrefix) {
		problems = append(problems, fmt.Sprintf("table %q does not start with %q",
			s.Table, TablePrefix))
	}
	if len(s.Bridges) == 0 {
		problems = append(problems, "no lab bridge")
	}
	for _, b := range s.Bridges {
		if b == "" || len(b) > 15 {
			problems = append(problems, fmt.Sprintf("bridge name %q must be 1-15 bytes", b))
		}
	}
	if len(s.Subnets) == 0 {
		problems = append(problems, "no lab subnet")
	}
	for _, p := range s.Subnets {
		if !p.IsValid() {
			problems = append(problems, "invalid subnet")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidSpec, s.Lab, strings.Join(problems, "; "))
	}
	return nil
}

// Result reports what Ensure applied.
type Result struct {
	// Table is "inet hybridlab_<lab>".
	Table string
	// Replaced is true when the table existed and was rebuilt (its
	// counters start again from zero).
	Replaced bool
	// Rules is the number of rules in the lab table.
	Rules      int
	DockerUser []DockerUserResult
}

// DockerUserResult says what Ensure did in one family's DOCKER-USER.
type DockerUserResult struct {
	Family string // "ip" or "ip6"
	// Chain is false when the family has no DOCKER-USER chain (dockerd not
	// running, or its IPv6 firewalling off); then nothing was added.
	Chain bool
	// Rules is the number of lab accept rules now in the chain.
	Rules int
}

func (r DockerUserResult) String() string {
	if !r.Chain && r.Family == "ip6" {
		return fmt.Sprintf("ip6 filter has no %s chain (dockerd's IPv6 firewalling is off): "+
			"bridged IPv6 is not dropped by Docker, nothing to add", DockerUserChain)
	}
	if !r.Chain {
		return fmt.Sprintf("%s filter has no %s chain: nothing added (dockerd not running); "+
			"run up again after starting dockerd", r.Family, DockerUserChain)
	}
	return fmt.Sprintf("%s filter %s: %d lab accept rule(s)", r.Family, DockerUserChain, r.Rules)
}

// State is the guard as the kernel holds it, as Status reports it.
type State struct {
	Lab   string
	Table string
	// Present is false when the lab table does not exist.
	Present bool
	// Enforcing is true when the table drops (not only counts) egress.
	Enforcing  bool
	Rules      []RuleStatus
	DockerUser []DockerUserStatus
	// NFCallIPTables / NFCallIP6Tables are the global br_netfilter
	// switches of the namespace (false when br_netfilter is absent).
	NFCallIPTables  bool
	NFCallIP6Tables bool
	// Explanation says in one line what the guard does and what is wrong.
	Explanation string
}

// Dropped sums the packets counted by the lab table's drop (or, with
// egress allowed, counting) rules.
func (s State) Dropped() uint64 {
	var n uint64
	for _, r := range s.Rules {
		if r.Family == "inet" && r.Counted {
			n += r.Packets
		}
	}
	return n
}

// RuleStatus is one rule with its counter.
type RuleStatus struct {
	Family string // inet, ip, ip6
	Table  string
	Chain  string
	Handle uint64
	// Rule is the rule in nft syntax, without counter values.
	Rule    string
	Comment string
	// Counted is true for the rules that count (and drop) egress.
	Counted bool
	Packets uint64
	Bytes   uint64
}

// DockerUserStatus is one family's filter table as it affects the lab.
type DockerUserStatus struct {
	Family string // "ip" or "ip6"
	Chain  bool   // DOCKER-USER exists
	// ForwardPolicy is the FORWARD chain's policy ("accept", "drop"), or
	// "" when the family has no iptables FORWARD chain.
	ForwardPolicy string
	// Rules are the lab's tagged accept rules.
	Rules []RuleStatus
}

// Text is the guard as `nft list` would show it, followed by the DOCKER-USER rules, without
// counter values: the same spec always gives the same text, so a caller can tell whether the
// guard in place is the one it wants.
func (s Spec) Text() string { return renderSpec(s.withDefaults()) }

// WithoutManagement returns s without the management network's bridge and subnet: a lab that
// runs no VMs has no management network, and guarding its unused subnet would drop the host's
// own traffic to whatever else uses that range.
func (s Spec) WithoutManagement(p *topology.Plan) Spec {
	out := s
	out.Bridges = slices.DeleteFunc(slices.Clone(s.Bridges), func(b string) bool {
		return b == p.Management.Bridge
	})
	out.Subnets = slices.DeleteFunc(slices.Clone(s.Subnets), func(n netip.Prefix) bool {
		return n == p.Management.Subnet.Masked()
	})
	return out
}
