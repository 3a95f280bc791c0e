package bridge

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Difference is one setting where an existing bridge and the plan disagree.
type Difference struct {
	Field string // mtu, mac, stp, forward_delay, address
	Have  string
	Want  string
	// Fix is what the user can do about it, with the command.
	Fix string

	// For address differences: what repairing the lab's own bridge adds
	// and removes.
	add  netip.Prefix
	drop []netip.Prefix
}

func (d Difference) String() string {
	return fmt.Sprintf("%s %s, the plan wants %s: %s", d.Field, d.Have, d.Want, d.Fix)
}

// MismatchError lists every difference between an existing bridge that
// this lab does not own and the plan. It matches ErrMismatch.
type MismatchError struct {
	Name  string
	Diffs []Difference
}

func (e *MismatchError) Error() string {
	if len(e.Diffs) == 1 {
		return fmt.Sprintf("bridge %q exists with %s", e.Name, e.Diffs[0])
	}
	parts := make([]string, len(e.Diffs))
	for i, d := range e.Diffs {
		parts[i] = d.String()
	}
	return fmt.Sprintf("bridge %q exists with settings the plan does not want: %s",
		e.Name, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

func notBridgeError(name, kind string) error {
	if kind == "" {
		kind = "device"
	}
	return fmt.Errorf("%w: link %q exists and is a %s, not a bridge: "+
		"remove it (ip link del %s) or choose another bridge name in lab.yaml",
		ErrNotBridge, name, kind, name)
}

// diff compares an existing bridge with the spec. Link-local addresses
// are ignored; the kernel adds them by itself.
func diff(want BridgeSpec, have Status) []Difference {
	var out []Difference
	n := want.Name
	if have.MTU != want.MTU {
		out = append(out, Difference{
			Field: "mtu", Have: fmt.Sprint(have.MTU), Want: fmt.Sprint(want.MTU),
			Fix: fmt.Sprintf("remove it (ip link del %s) or set mtu: %d in lab.yaml",
				n, have.MTU),
		})
	}
	if !strings.EqualFold(have.MAC, want.MAC.String()) {
		out = append(out, Difference{
			Field: "mac", Have: have.MAC, Want: want.MAC.String(),
			Fix: fmt.Sprintf("set it (ip link set %s address %s) or remove it (ip link del %s)",
				n, want.MAC, n),
		})
	}
	if have.STP {
		out = append(out, Difference{
			Field: "stp", Have: "on", Want: "off",
			Fix: fmt.Sprintf("turn it off (ip link set %s type bridge stp_state 0) "+
				"or remove it (ip link del %s)", n, n),
		})
	}
	// With STP off a port forwards as soon as it joins, whatever the
	// forward delay, so the delay only matters on an STP bridge.
	if have.STP && have.ForwardDelay != 0 {
		out = append(out, Difference{
			Field: "forward_delay", Have: fmtDelay(have.ForwardDelay), Want: "0",
			Fix: fmt.Sprintf("set it (ip link set %s type bridge forward_delay 0) "+
				"or remove it (ip link del %s)", n, n),
		})
	}
	return append(out, diffAddresses(want, have.Addresses)...)
}

func fmtDelay(d time.Duration) string {
	return fmt.Sprintf("%d (%s)", d/(10*time.Millisecond), d)
}

// diffAddresses reports a missing address together with the bridge's
// other addresses of the same family, so the message shows what the
// bridge holds instead.
func diffAddresses(want BridgeSpec, have []netip.Prefix) []Difference {
	missing, extra := addressDelta(want.addresses(), have)
	var out []Difference
	for _, m := range missing {
		others := sameFamily(extra, m.Addr().Is4())
		d := Difference{
			Field: "address", Have: joinPrefixes(others), Want: m.String(),
			add: m, drop: others,
		}
		if len(others) == 0 {
			d.Have = "(none)"
			d.Fix = fmt.Sprintf("add it (ip addr add %s dev %s) or remove the bridge "+
				"(ip link del %s)", m, want.Name, want.Name)
		} else {
			d.Fix = fmt.Sprintf("remove the bridge (ip link del %s) or set subnet: %s "+
				"and gateway: %s in lab.yaml", want.Name, others[0].Masked(), others[0].Addr())
			extra = slices.DeleteFunc(extra, func(p netip.Prefix) bool {
				return slices.Contains(others, p)
			})
		}
		out = append(out, d)
	}
	for _, x := range extra {
		out = append(out, Difference{
			Field: "address", Have: x.String(), Want: "only " + joinPrefixes(want.addresses()),
			Fix:  fmt.Sprintf("remove it (ip addr del %s dev %s)", x, want.Name),
			drop: []netip.Prefix{x},
		})
	}
	return out
}

// addressDelta returns the wanted addresses the bridge lacks and the
// bridge's addresses the spec does not list.
func addressDelta(want, have []netip.Prefix) (missing, extra []netip.Prefix) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			missing = append(missing, w)
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) && !h.Addr().IsLinkLocalUnicast() {
			extra = append(extra, h)
		}
	}
	return missing, extra
}

func sameFamily(ps []netip.Prefix, v4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == v4 {
			out = append(out, p)
		}
	}
	return out
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

func ipNetToPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
