package libvirt

import (
	"fmt"
	"net/netip"
	"strings"
)

// LeaseAddr returns the IPv4 address libvirt's dnsmasq leased to mac on
// network, like `virsh net-dhcp-leases NETWORK --mac MAC`; ok is false
// while there is no lease.
func (c *Conn) LeaseAddr(network, mac string) (addr netip.Addr, ok bool, err error) {
	net, err := c.l.NetworkLookupByName(network)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("look up libvirt network %q: %w", network, err)
	}
	leases, _, err := c.l.NetworkGetDhcpLeases(net, []string{strings.ToLower(mac)}, 1, 0)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("read leases of %q: %w", network, err)
	}
	var newest int64
	for _, l := range leases {
		a, err := netip.ParseAddr(l.Ipaddr)
		if err != nil || !a.Is4() || l.Expirytime < newest {
			continue
		}
		addr, ok, newest = a, true, l.Expirytime
	}
	return addr, ok, nil
}
