package topology

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MAC prefixes. Every derived MAC is locally administered and unicast (the
// first octet has bit 1 set and bit 0 clear) and ends in the node's IPv4
// address, so the same plan always yields the same MACs and a MAC names its
// address at a glance. Each kind has its own prefix, so a VM and a container
// can never share a MAC.
var (
	macVM        = [2]byte{0x52, 0x54} // QEMU's familiar 52:54, kept for VMs
	macContainer = [2]byte{0x02, 0x42} // Docker's own scheme: 02:42 + IPv4
	macBridge    = [2]byte{0x02, 0x68}
)

func deriveMAC(prefix [2]byte, ip netip.Addr) string {
	b := ip.As4()
	return net.HardwareAddr{prefix[0], prefix[1], b[0], b[1], b[2], b[3]}.String()
}

func normalizeMAC(s string) string {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return strings.ToLower(s)
	}
	return hw.String()
}

func parseRange(s string) (AddrRange, error) {
	first, last, ok := strings.Cut(s, "-")
	if !ok {
		return AddrRange{}, fmt.Errorf("want FIRST-LAST, e.g. 10.0.1.10-10.0.1.99")
	}
	a, err := netip.ParseAddr(strings.TrimSpace(first))
	if err != nil || !a.Is4() {
		return AddrRange{}, fmt.Errorf("%q is not an IPv4 address", first)
	}
	b, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil || !b.Is4() {
		return AddrRange{}, fmt.Errorf("%q is not an IPv4 address", last)
	}
	if b.Less(a) {
		return AddrRange{}, fmt.Errorf("%s comes after %s", a, b)
	}
	return AddrRange{First: a, Last: b}, nil
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func addrDiff(a, b netip.Addr) uint32 { return u32(a) - u32(b) }

func offset(a netip.Addr, n int) netip.Addr { return fromU32(u32(a) + uint32(n)) }

// broadcast is the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	p = p.Masked()
	return fromU32(u32(p.Addr()) | (1<<(32-p.Bits()) - 1))
}

// lastHost is the last address of p, less the broadcast address when p is
// a whole subnet that has one (at most /30).
func lastHost(p netip.Prefix) netip.Addr {
	b := broadcast(p)
	if p.Bits() <= 30 {
		return b.Prev()
	}
	return b
}

func prefixSize(p netip.Prefix) int { return 1 << (32 - p.Bits()) }

func rangeOf(p netip.Prefix) AddrRange {
	p = p.Masked()
	return AddrRange{First: p.Addr(), Last: broadcast(p)}
}

func overlaps(a, b AddrRange) bool {
	return a.First.Compare(b.Last) <= 0 && b.First.Compare(a.Last) <= 0
}
