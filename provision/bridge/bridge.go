// Package bridge creates, adopts, inspects and removes the lab's Linux
// bridge: the one L2 segment that VMs (tap ports) and containers (veth
// ports) share.
//
// Every function acts in the network namespace of the calling OS thread,
// so a caller that has locked its goroutine to a thread and switched that
// thread into a namespace (netns.Set) manages the bridges of that
// namespace.
package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"hybridlab/topology"
)

// TagPrefix starts the alias (IFLA_IFALIAS) of every bridge hybridlab
// created; the lab name follows, as in "hybridlab:hybrid".
const TagPrefix = "hybridlab:"

// Tag is the alias that marks a bridge as created by lab.
func Tag(lab string) string { return TagPrefix + lab }

// Sentinel errors; match them with errors.Is.
var (
	// ErrMismatch: a bridge of that name exists with other settings.
	ErrMismatch = errors.New("bridge settings differ from the plan")
	// ErrNotBridge: the name is taken by a link of another kind.
	ErrNotBridge = errors.New("link is not a bridge")
	// ErrNotFound: no link of that name exists.
	ErrNotFound = errors.New("no such link")
	// ErrNotOwned: the bridge was not created by this lab.
	ErrNotOwned = errors.New("bridge not created by this lab")
)

// BridgeSpec is what the lab wants its bridge to be.
type BridgeSpec struct {
	// Lab names the owner; the bridge's alias becomes Tag(Lab).
	Lab  string
	Name string
	// MAC is set at creation so the bridge keeps it as ports come and go.
	MAC net.HardwareAddr
	MTU int
	// Address is the gateway address with the subnet's length.
	Address netip.Prefix
	// IPv6 lists optional extra IPv6 addresses (added without DAD).
	IPv6 []netip.Prefix
}

// SpecFromPlan returns the bridge the plan describes.
func SpecFromPlan(p *topology.Plan) (BridgeSpec, error) {
	mac, err := net.ParseMAC(p.Bridge.MAC)
	if err != nil {
		return BridgeSpec{}, fmt.Errorf("bridge %q: parse mac: %w", p.Bridge.Name, err)
	}
	return BridgeSpec{
		Lab:     p.Lab,
		Name:    p.Bridge.Name,
		MAC:     mac,
		MTU:     p.Bridge.MTU,
		Address: p.Bridge.Address,
	}, nil
}

// addresses is every address the spec puts on the bridge.
func (s BridgeSpec) addresses() []netip.Prefix {
	return append([]netip.Prefix{s.Address}, s.IPv6...)
}

// Action says what Ensure did.
type Action string

// Actions Ensure reports.
const (
	// Created: the bridge did not exist and Ensure made it.
	Created Action = "created"
	// Adopted: an untagged bridge with the plan's settings existed; Ensure
	// uses it (bringing it up if needed) but does not tag it, so Remove
	// leaves it in place (Result.Owned is false).
	Adopted Action = "adopted"
	// Repaired: the lab's own bridge had drifted and Ensure put it back.
	Repaired Action = "repaired"
	// Unchanged: the lab's own bridge already matched; nothing was done.
	Unchanged Action = "unchanged"
)

// Result reports what Ensure found and did.
type Result struct {
	Name   string
	Index  int
	Action Action
	// Owned is true when the bridge carries this lab's tag, so Remove may
	// delete it.
	Owned bool
	// Changes lists each change made to an existing bridge, in words.
	Changes []string
}

func (r Result) String() string {
	s := fmt.Sprintf("bridge %q %s", r.Name, r.Action)
	if !r.Owned {
		s += ", not created by hybridlab"
	}
	if len(r.Changes) > 0 {
		s += " (" + strings.Join(r.Changes, "; ") + ")"
	}
	return s
}

// PortState is a bridge port's STP state (IFLA_BRPORT_STATE).
type PortState uint8

// Port states as the kernel numbers them (BR_STATE_*).
const (
	PortDisabled   PortState = 0
	PortListening  PortState = 1
	PortLearning   PortState = 2
	PortForwarding PortState = 3
	PortBlocking   PortState = 4
)

func (s PortState) String() string {
	switch s {
	case PortDisabled:
		return "disabled"
	case PortListening:
		return "listening"
	case PortLearning:
		return "learning"
	case PortForwarding:
		return "forwarding"
	case PortBlocking:
		return "blocking"
	}
	return fmt.Sprintf("state %d", uint8(s))
}

// Port is one link enslaved to the bridge.
type Port struct {
	Name   string
	Index  int
	Master string
	MTU    int
	Kind   string // link kind: veth, tun, …
	State  PortState
	// Owner is a guess from the link kind: "container" for a veth, "vm"
	// for a tap (vnetN, tapN), empty when unknown.
	Owner string
}

// Status is the observed state of a bridge (`ip -d addr show NAME` plus
// `bridge link`).
type Status struct {
	Name      string
	Index     int
	Alias     string
	AdminUp   bool
	OperState string
	MTU       int
	MAC       string
	STP       bool
	// ForwardDelay as the kernel holds it (centisecond resolution).
	ForwardDelay time.Duration
	// Addresses excludes link-local addresses.
	Addresses []netip.Prefix
	// NFCallIPTables and NFCallIP6Tables are the per-bridge br_netfilter
	// switches; the global sysctls override them when set.
	NFCallIPTables  bool
	NFCallIP6Tables bool
	Ports           []Port
}

// Lab returns the lab named by the bridge's tag, or "" when untagged.
func (s Status) Lab() string {
	lab, ok := strings.CutPrefix(s.Alias, TagPrefix)
	if !ok {
		return ""
	}
	return lab
}

// Snapshot is the part of a bridge's state that other software (Docker,
// fault B11) may change behind the lab's back. Snapshots compare with ==.
type Snapshot struct {
	// Addresses is the sorted, comma-separated address list.
	Addresses       string
	MTU             int
	MAC             string
	STP             bool
	ForwardDelay    time.Duration
	NFCallIPTables  bool
	NFCallIP6Tables bool
}

// Snapshot returns the comparable part of s.
func (s Status) Snapshot() Snapshot {
	addrs := make([]string, 0, len(s.Addresses))
	for _, a := range s.Addresses {
		addrs = append(addrs, a.String())
	}
	slices.Sort(addrs)
	return Snapshot{
		Addresses:       strings.Join(addrs, ","),
		MTU:             s.MTU,
		MAC:             s.MAC,
		STP:             s.STP,
		ForwardDelay:    s.ForwardDelay,
		NFCallIPTables:  s.NFCallIPTables,
		NFCallIP6Tables: s.NFCallIP6Tables,
	}
}

// Diff lists, in words, each field that differs from before to after;
// nil when the snapshots are equal.
func (before Snapshot) Diff(after Snapshot) []string {
	var out []string
	add := func(field string, a, b any) {
		if a != b {
			out = append(out, fmt.Sprintf("%s changed from %v to %v", field, a, b))
		}
	}
	add("addresses", quoteEmpty(before.Addresses), quoteEmpty(after.Addresses))
	add("mtu", before.MTU, after.MTU)
	add("mac", before.MAC, after.MAC)
	add("stp", onOff(before.STP), onOff(after.STP))
	add("forward_delay", before.ForwardDelay, after.ForwardDelay)
	add("nf_call_iptables", onOff(before.NFCallIPTables), onOff(after.NFCallIPTables))
	add("nf_call_ip6tables", onOff(before.NFCallIP6Tables), onOff(after.NFCallIP6Tables))
	return out
}

func quoteEmpty(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
