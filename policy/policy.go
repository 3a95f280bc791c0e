// Package policy compiles a lab's network policies (lab.yaml `policies:`)
// to nftables and applies them, in two tables of the lab's own.
//
// # Where the rules live, and why
//
// Every VM tap and container veth is a port of the one lab bridge, so
// node-to-node traffic is switched, never routed. Two facts of the kernels
// hybridlab runs on decide where a stateful filter for switched frames can
// sit:
//
//   - nftables' bridge family has no connection tracking
//     (CONFIG_NF_CONNTRACK_BRIDGE is off: `ct state` in a bridge table fails
//     with EPROTO, "Protocol error") and no reject (CONFIG_NFT_BRIDGE_REJECT
//     is off), and `meta ibrname` is unsupported, so a bridge-family rule
//     cannot even tell which bridge a frame crosses.
//   - br_netfilter is built in, and with bridge-nf-call-iptables=1 (the
//     default, and what dockerd sets) every switched IPv4 frame passes the
//     IPv4 hooks: conntrack at prerouting, then the forward hook with the
//     bridge as both input and output interface. There `ct state`, `reject`
//     (a TCP reset is sent out of the frame's bridge port) and counters
//     work as they do for routed traffic.
//
// A lab with several segments has one bridge per segment, and the host
// routes between them: a routed packet passes the same forward hook, in
// from one lab bridge and out to another, so one set of rules by address
// covers switched and routed traffic alike.
//
// So the policy proper lives in `table inet hybridlab_<lab>_pol`:
//
//   - chain forward (hook forward, priority -5): `iifname BR1 oifname BR2
//     jump nodes_to_nodes` for every ordered pair of lab bridges (BR1 = BR2
//     included), traffic switched between two lab ports or routed between
//     two segments;
//   - chain input (hook input, priority -5): `iifname BR jump
//     nodes_to_host` for every lab bridge, traffic from the lab to the host
//     itself, on any of its gateway addresses;
//   - chain output (hook output, priority -5): `oifname BR jump
//     host_to_nodes` for every lab bridge, the host's own traffic into the
//     lab. Only rules with `from: host` act here and the default never
//     drops: the host must stay able to manage and measure the lab.
//
// `host` in a rule is the host on every segment. A destination cidr or
// segment that holds a gateway address also selects the host, on that
// address only.
//
// Each regular chain starts with `ct state established,related accept`, so
// a policy change never cuts a connection that is still allowed; the input
// chain always accepts DHCP (udp dport 67) and DNS to every segment's
// gateway, and forward and input accept IPv6 neighbour discovery. Then come the lab's
// rules in order, each with a counter and its name as the rule comment;
// last a rule commented "builtin:default" that counts (and with default
// deny, drops) the rest.
//
// Priority -5 runs after the egress guard (-10, which only returns or drops)
// and before iptables-nft's filter chains (0): a drop here is final, an
// accept still passes Docker's FORWARD chain, where the guard's DOCKER-USER
// accept lets bridged lab traffic through.
//
// `table bridge hybridlab_<lab>_pol` handles what br_netfilter does not pass
// to the IPv4 and IPv6 hooks: its forward chain (priority -200) always
// accepts ARP, IPv4 and IPv6, and with default deny drops every other
// ether type (802.1Q-tagged frames among them, which would otherwise
// bypass the inet table) sent from or to a lab node's MAC address, the
// nodes of every segment. It matches MACs because it cannot match the
// bridge.
//
// The policy only takes effect while br_netfilter passes every lab
// bridge's frames to the IP hooks; Ensure refuses to apply it otherwise
// (ErrNotFiltered). Established connections that a new policy no longer
// allows are not cut: they live on until conntrack forgets them.
//
// Every function acts in the network namespace of the calling OS thread.
package policy

import (
	"errors"
	"fmt"

	"hybridlab/topology"
)

// TableSuffix ends the name of both policy tables: hybridlab_<lab>_pol.
const TableSuffix = "_pol"

// TableName is the name of the lab's policy tables (inet and bridge).
func TableName(lab string) string { return "hybridlab_" + lab + TableSuffix }

// Priority of the inet chains: after the egress guard, before iptables.
const Priority = -5

// BridgePriority is the bridge family's filter priority.
const BridgePriority = -200

// BuiltinPrefix starts the comment of every rule the policy adds itself.
const BuiltinPrefix = "builtin:"

// Builtin rule comments.
const (
	CommentEstablished = BuiltinPrefix + "established"
	CommentND          = BuiltinPrefix + "ipv6-nd"
	CommentDHCP        = BuiltinPrefix + "dhcp"
	CommentDNS         = BuiltinPrefix + "dns"
	CommentARP         = BuiltinPrefix + "arp"
	CommentIP          = BuiltinPrefix + "ip"
	CommentDefault     = BuiltinPrefix + "default"
)

// Chain names.
const (
	ChainForward      = "forward"
	ChainInput        = "input"
	ChainOutput       = "output"
	ChainNodesToNodes = "nodes_to_nodes"
	ChainNodesToHost  = "nodes_to_host"
	ChainHostToNodes  = "host_to_nodes"
)

// ErrNotFiltered is returned by Ensure when br_netfilter does not pass the
// lab bridge's frames to the IP hooks, so the policy would not apply.
var ErrNotFiltered = errors.New("bridged traffic bypasses the IP hooks")

// ErrNoTraffic is returned for a rule that can match no lab traffic (from
// host to host).
var ErrNoTraffic = errors.New("rule matches no lab traffic")

// Result reports what Ensure did.
type Result struct {
	// Tables are the tables now in place, "inet hybridlab_<lab>_pol" and
	// "bridge hybridlab_<lab>_pol"; none when the lab has no policies.
	Tables []string
	// Rules is the number of nft rules in them.
	Rules int
	// Replaced is true when the tables existed and were rebuilt (counters
	// restart from zero).
	Replaced bool
	// Removed is true when the lab has no policies and tables were deleted.
	Removed bool
}

// RuleCounter is the packet and byte count of one policy rule, summed over
// the nft rules it compiled to. Builtin rules carry BuiltinPrefix.
type RuleCounter struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Builtin reports whether the counter belongs to a rule the policy adds
// itself rather than one of the lab's rules.
func (r RuleCounter) Builtin() bool {
	return len(r.Name) > len(BuiltinPrefix) && r.Name[:len(BuiltinPrefix)] == BuiltinPrefix
}

func (r RuleCounter) String() string {
	return fmt.Sprintf("%s: %d packets, %d bytes", r.Name, r.Packets, r.Bytes)
}

// Render returns the tables Ensure would apply for pol, as text in the
// form `nft list table` shows them (without counter values), for golden
// tests and `setup up --dry-run`. Without policies it says so.
func Render(p *topology.Plan, pol *topology.Policies) (string, error) {
	if pol == nil {
		return fmt.Sprintf("# lab %s has no policies: tables inet/bridge %s are removed\n",
			p.Lab, TableName(p.Lab)), nil
	}
	tables, err := compile(p, pol)
	if err != nil {
		return "", err
	}
	return render(tables), nil
}
