package doctor

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"hybridlab/topology"
)

// readNetlink lists links, bridges with their ports, addresses and main
// table routes of the calling thread's namespace (`ip -d link`, `ip addr`,
// `ip route`).
func readNetlink(_ context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		s.Links = append(s.Links, linkOf(l, names))
	}
	for _, l := range s.Links {
		if l.Kind != "bridge" {
			continue
		}
		br, err := bridgeOf(l, s.Links)
		if err != nil {
			return err
		}
		s.Bridges = append(s.Bridges, br)
	}
	if err := readAddrs(s, names); err != nil {
		return err
	}
	return readRoutes(s, names)
}

func linkOf(l netlink.Link, names map[int]string) Link {
	a := l.Attrs()
	return Link{
		Name: a.Name, Index: a.Index, Kind: l.Type(), MTU: a.MTU,
		Master: names[a.MasterIndex], Alias: a.Alias, MAC: a.HardwareAddr.String(),
		Up: a.Flags&net.FlagUp != 0,
	}
}

func bridgeOf(l Link, links []Link) (Bridge, error) {
	br := Bridge{Name: l.Name, MAC: l.MAC, MTU: l.MTU}
	if err := bridgeAttrs(l.Index, &br); err != nil {
		return Bridge{}, err
	}
	for _, p := range links {
		if p.Master == l.Name {
			br.Ports = append(br.Ports, Port{Name: p.Name, MTU: p.MTU})
		}
	}
	return br, nil
}

// bridgeAttrs reads STP state, forward delay and nf_call_iptables from
// IFLA_LINKINFO. It uses netlink rather than /sys/class/net, because sysfs
// shows the namespace it was mounted in, not the caller's.
func bridgeAttrs(index int, br *Bridge) error {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil || len(msgs) == 0 {
		return fmt.Errorf("read bridge %q attributes: %w", br.Name, err)
	}
	attrs, err := nl.ParseRouteAttr(msgs[0][msg.Len():])
	if err != nil {
		return fmt.Errorf("parse bridge %q attributes: %w", br.Name, err)
	}
	for _, a := range attrs {
		if a.Attr.Type == unix.IFLA_LINKINFO {
			return bridgeInfo(a.Value, br)
		}
	}
	return nil
}

func bridgeInfo(linkinfo []byte, br *Bridge) error {
	infos, err := nl.ParseRouteAttr(linkinfo)
	if err != nil {
		return fmt.Errorf("parse bridge %q link info: %w", br.Name, err)
	}
	for _, i := range infos {
		if i.Attr.Type != unix.IFLA_INFO_DATA {
			continue
		}
		data, err := nl.ParseRouteAttr(i.Value)
		if err != nil {
			return fmt.Errorf("parse bridge %q data: %w", br.Name, err)
		}
		for _, d := range data {
			switch {
			case d.Attr.Type == unix.IFLA_BR_STP_STATE && len(d.Value) >= 4:
				br.STP = int(binary.NativeEndian.Uint32(d.Value))
			case d.Attr.Type == unix.IFLA_BR_FORWARD_DELAY && len(d.Value) >= 4:
				br.ForwardDelay = int(binary.NativeEndian.Uint32(d.Value))
			case d.Attr.Type == unix.IFLA_BR_NF_CALL_IPTABLES && len(d.Value) >= 1:
				br.NFCallIptables = int(d.Value[0])
			case d.Attr.Type == unix.IFLA_BR_NF_CALL_IP6TABLES && len(d.Value) >= 1:
				br.NFCallIP6tables = int(d.Value[0])
			}
		}
	}
	return nil
}

func readAddrs(s *HostState, names map[int]string) error {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		if !ok || a.IP.IsLinkLocalUnicast() {
			continue
		}
		s.Addrs = append(s.Addrs, Addr{Link: names[a.LinkIndex], Prefix: p})
		if br := bridgeRef(s, names[a.LinkIndex]); br != nil {
			br.Addrs = append(br.Addrs, p)
		}
	}
	return nil
}

func bridgeRef(s *HostState, name string) *Bridge {
	for i := range s.Bridges {
		if s.Bridges[i].Name == name {
			return &s.Bridges[i]
		}
	}
	return nil
}

func readRoutes(s *HostState, names map[int]string) error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		p, ok := prefixOf(r.Dst)
		if !ok {
			continue
		}
		s.Routes = append(s.Routes, Route{Dst: p.Masked(), Link: names[r.LinkIndex]})
	}
	return nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
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
