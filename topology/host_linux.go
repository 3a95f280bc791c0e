package topology

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ReadInventory reads the IPv4 routes of the main table and the IPv4
// addresses of every link in the calling thread's network namespace (`ip -4
// route show table main`, `ip -4 addr`). It only reads, so it needs no
// privileges. DockerNetworks and LibvirtNetworks are left for the caller.
func ReadInventory(ctx context.Context) (Inventory, error) {
	if err := ctx.Err(); err != nil {
		return Inventory{}, err
	}
	names, err := linkNames()
	if err != nil {
		return Inventory{}, err
	}
	var inv Inventory
	if inv.Routes, err = readRoutes(names); err != nil {
		return Inventory{}, err
	}
	if inv.Addresses, err = readAddresses(names); err != nil {
		return Inventory{}, err
	}
	return inv, nil
}

func linkNames() (map[int]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	return names, nil
}

func readRoutes(names map[int]string) ([]NamedPrefix, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes of table main: %w", err)
	}
	var out []NamedPrefix
	for _, r := range routes {
		prefix, ok := toPrefix(r.Dst)
		if !ok || prefix.Bits() == 0 {
			continue
		}
		out = append(out, NamedPrefix{Name: routeOwner(r, names), Prefix: prefix})
	}
	return out, nil
}

func routeOwner(r netlink.Route, names map[int]string) string {
	index := r.LinkIndex
	if index == 0 && len(r.MultiPath) > 0 {
		index = r.MultiPath[0].LinkIndex
	}
	if name, ok := names[index]; ok {
		return name
	}
	switch r.Type {
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	}
	return fmt.Sprintf("link index %d", index)
}

func readAddresses(names map[int]string) ([]NamedPrefix, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []NamedPrefix
	for _, a := range addrs {
		prefix, ok := toPrefix(a.IPNet)
		if !ok {
			continue
		}
		name := names[a.LinkIndex]
		if name == "" {
			name = fmt.Sprintf("link index %d", a.LinkIndex)
		}
		out = append(out, NamedPrefix{Name: name, Prefix: prefix})
	}
	return out, nil
}

func toPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	addr = addr.Unmap()
	if !addr.Is4() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(addr, ones), true
}
