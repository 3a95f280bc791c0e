package libvirt

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"hybridlab/topology"
)

// ErrOverlap means the management subnet overlaps a prefix the lab does
// not own.
var ErrOverlap = errors.New("management subnet overlaps the host")

// ErrDrift means a network with the lab's name exists but differs from
// the plan.
var ErrDrift = errors.New("libvirt network differs from the plan")

// NetworkXML renders the lab's isolated management network: no <forward>
// (nothing leaves the host), DNS off (nothing to answer or forward), DHCP
// from the plan's range, and STP off: with STP on, the kernel clamps the
// forward delay to at least 2 s whatever libvirt asks, so each new VM port
// waits before it forwards (fault B18), and an isolated bridge of VM taps
// cannot form a loop.
func NetworkXML(m topology.ManagementPlan) string {
	mask := netipMask(m.Subnet.Bits())
	return fmt.Sprintf(`<network>
  <name>%s</name>
  <bridge name='%s' stp='off' delay='0'/>
  <dns enable='no'/>
  <ip address='%s' netmask='%s'>
    <dhcp>
      <range start='%s' end='%s'/>
    </dhcp>
  </ip>
</network>
`, m.Network, m.Bridge, m.Gateway, mask, m.DHCP.First, m.DHCP.Last)
}

func netipMask(bits int) string {
	var b [4]byte
	for i := 0; i < bits; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b).String()
}

// EnsureNetwork defines and starts the plan's management network, like
// `virsh net-define` + `virsh net-start`. Before it creates anything it
// refuses a management subnet that overlaps a host route, address or
// another libvirt network (ErrOverlap, naming the holder). An existing
// network of that name is checked against the plan (ErrDrift names the
// field) and started if inactive. created reports whether this call
// defined the network, so teardown removes only what the lab made.
func (c *Conn) EnsureNetwork(ctx context.Context, p *topology.Plan) (created bool, err error) {
	m := p.Management
	net, err := c.l.NetworkLookupByName(m.Network)
	switch {
	case err == nil:
		if err := c.checkNetwork(net, m); err != nil {
			return false, err
		}
	case isNotFound(err):
		if err := c.checkOverlap(ctx, p); err != nil {
			return false, err
		}
		net, err = c.l.NetworkDefineXML(NetworkXML(m))
		if err != nil {
			return false, fmt.Errorf("define libvirt network %q: %w", m.Network, err)
		}
		created = true
	default:
		return false, fmt.Errorf("look up libvirt network %q: %w", m.Network, err)
	}
	active, err := c.l.NetworkIsActive(net)
	if err != nil {
		return created, fmt.Errorf("check libvirt network %q: %w", m.Network, err)
	}
	if active == 0 {
		if err := c.l.NetworkCreate(net); err != nil {
			return created, fmt.Errorf("start libvirt network %q: %w", m.Network, err)
		}
	}
	return created, nil
}

// RemoveNetwork stops and undefines a libvirt network, like `virsh
// net-destroy` + `virsh net-undefine`. An absent network is not an error.
func (c *Conn) RemoveNetwork(name string) error {
	net, err := c.l.NetworkLookupByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up libvirt network %q: %w", name, err)
	}
	if active, _ := c.l.NetworkIsActive(net); active != 0 {
		if err := c.l.NetworkDestroy(net); err != nil && !isNotFound(err) {
			return fmt.Errorf("stop libvirt network %q: %w", name, err)
		}
	}
	if err := c.l.NetworkUndefine(net); err != nil && !isNotFound(err) {
		return fmt.Errorf("undefine libvirt network %q: %w", name, err)
	}
	return nil
}

type networkDoc struct {
	Name    string `xml:"name"`
	Forward *struct {
		Mode string `xml:"mode,attr"`
	} `xml:"forward"`
	Bridge struct {
		Name string `xml:"name,attr"`
	} `xml:"bridge"`
	IPs []struct {
		Address string `xml:"address,attr"`
		Netmask string `xml:"netmask,attr"`
		Prefix  int    `xml:"prefix,attr"`
		Family  string `xml:"family,attr"`
	} `xml:"ip"`
}

// prefixes returns the network's IPv4 prefixes.
func (d networkDoc) prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, ip := range d.IPs {
		addr, err := netip.ParseAddr(ip.Address)
		if err != nil || !addr.Is4() {
			continue
		}
		bits := ip.Prefix
		if ip.Netmask != "" {
			mask, err := netip.ParseAddr(ip.Netmask)
			if err != nil {
				continue
			}
			bits = maskBits(mask)
		}
		out = append(out, netip.PrefixFrom(addr, bits))
	}
	return out
}

func maskBits(mask netip.Addr) int {
	n := 0
	for _, b := range mask.AsSlice() {
		for ; b&0x80 != 0; b <<= 1 {
			n++
		}
	}
	return n
}

func (c *Conn) networkDoc(net golibvirt.Network) (networkDoc, error) {
	x, err := c.l.NetworkGetXMLDesc(net, 0)
	if err != nil {
		return networkDoc{}, fmt.Errorf("read libvirt network %q: %w", net.Name, err)
	}
	var d networkDoc
	if err := xml.Unmarshal([]byte(x), &d); err != nil {
		return networkDoc{}, fmt.Errorf("parse libvirt network %q: %w", net.Name, err)
	}
	return d, nil
}

// checkNetwork compares an existing network with the plan (fault B15: a
// network defined earlier keeps its old settings silently).
func (c *Conn) checkNetwork(net golibvirt.Network, m topology.ManagementPlan) error {
	d, err := c.networkDoc(net)
	if err != nil {
		return err
	}
	var problems []string
	if d.Forward != nil {
		problems = append(problems, fmt.Sprintf("forward mode %q, want none", d.Forward.Mode))
	}
	if d.Bridge.Name != m.Bridge {
		problems = append(problems, fmt.Sprintf("bridge %q, want %q", d.Bridge.Name, m.Bridge))
	}
	want := netip.PrefixFrom(m.Gateway, m.Subnet.Bits())
	if ps := d.prefixes(); len(ps) != 1 || ps[0] != want {
		problems = append(problems, fmt.Sprintf("addresses %v, want %s", ps, want))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %q: %s; remove it (virsh net-undefine) or fix lab.yaml",
			ErrDrift, m.Network, strings.Join(problems, ", "))
	}
	return nil
}

// checkOverlap reads the host's routes and addresses and every libvirt
// network, and refuses a management subnet that overlaps any of them
// (fault B07).
func (c *Conn) checkOverlap(ctx context.Context, p *topology.Plan) error {
	inv, err := topology.ReadInventory(ctx)
	if err != nil {
		return fmt.Errorf("read host prefixes: %w", err)
	}
	inv.LibvirtNetworks, err = c.networkPrefixes()
	if err != nil {
		return err
	}
	var clashes []string
	for _, conflict := range topology.HostConflicts(p, inv) {
		if conflict.Field == "management.subnet" {
			clashes = append(clashes, conflict.String())
		}
	}
	if len(clashes) > 0 {
		return fmt.Errorf("%w: %s", ErrOverlap, strings.Join(clashes, "; "))
	}
	return nil
}

func (c *Conn) networkPrefixes() ([]topology.NamedPrefix, error) {
	nets, _, err := c.l.ConnectListAllNetworks(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list libvirt networks: %w", err)
	}
	var out []topology.NamedPrefix
	for _, n := range nets {
		d, err := c.networkDoc(n)
		if err != nil {
			return nil, err
		}
		for _, p := range d.prefixes() {
			out = append(out, topology.NamedPrefix{Name: n.Name, Prefix: p, Bridge: d.Bridge.Name})
		}
	}
	return out, nil
}
