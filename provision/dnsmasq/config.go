// Package dnsmasq runs a lab's DNS and DHCP server: one dnsmasq process per
// lab, bound to the gateway addresses of the lab's bridges only (one bridge
// per segment), with no upstream servers. Names come from the IP plan
// (host-record, dhcp-host), never from names that DHCP clients send (fault
// B14); names added after start go into a hosts directory that dnsmasq
// re-reads on change.
package dnsmasq

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"hybridlab/topology"
)

// File names inside the state directory.
const (
	ConfFile  = "dnsmasq.conf"
	PIDFile   = "dnsmasq.pid"
	LeaseFile = "dnsmasq.leases"
	LogFile   = "dnsmasq.log"
	HashFile  = "dnsmasq.hash"
	HostsDir  = "dnsmasq.hosts.d"
)

// LeaseTime is the DHCP lease time handed to VMs.
const LeaseTime = "1h"

// ErrInvalid is wrapped by errors about unusable input.
var ErrInvalid = errors.New("invalid dnsmasq input")

// Config is a rendered dnsmasq configuration and the files it names.
type Config struct {
	Lab string
	// Bridge and Listen are the main segment's bridge and gateway.
	Bridge string
	Listen netip.Addr
	// Bridges and Gateways hold every segment's, main first; dnsmasq
	// listens on each gateway.
	Bridges   []string
	Gateways  []netip.Addr
	Domain    string
	Path      string
	Text      string
	Hash      string
	PIDFile   string
	LeaseFile string
	LogFile   string
	HostsDir  string
}

// Render produces the dnsmasq configuration for p with every file under
// stateDir (an absolute path). It reads and writes nothing.
//
// One dnsmasq serves every segment of the lab. It listens only on the
// segments' gateway addresses (interface=BR per bridge, bind-interfaces,
// listen-address=GW per gateway, except-interface=lo) and has no upstream
// (no-resolv, no-hosts, no server= lines), so no query ever leaves the
// host. It is authoritative (auth-server on the bridges, auth-zone) for
// the lab domain and every segment's reverse zone, which local= also keeps
// from ever being forwarded. Every node gets A and PTR records, answered
// with the AA bit; the main gateway is gw.DOMAIN and host.DOMAIN, the
// gateway of another segment SEG is gw-SEG.DOMAIN. A lab name the plan
// lacks gets NXDOMAIN and any other name REFUSED, including bare names
// such as "vm1": clients reach those through their search domain (DHCP
// option 15, `docker run --dns-search`).
//
// Each VM gets a DHCP reservation on its segment, and the segment's
// gateway as DNS server. Clients get no router option, so a VM's default
// route stays on the management network; in a routed lab (more than one
// segment) each segment's clients (tag seg-NAME) get a classless static
// route (option 121) to every other segment's subnet via their own
// segment's gateway.
func Render(p *topology.Plan, stateDir string) (Config, error) {
	if !filepath.IsAbs(stateDir) {
		return Config{}, fmt.Errorf("%w: state dir %q is not an absolute path", ErrInvalid, stateDir)
	}
	if err := checkPlan(p); err != nil {
		return Config{}, err
	}
	c := Config{
		Lab:       p.Lab,
		Bridge:    p.Bridge.Name,
		Listen:    p.Gateway,
		Bridges:   p.Bridges(),
		Gateways:  p.Gateways(),
		Domain:    p.Domain,
		Path:      filepath.Join(stateDir, ConfFile),
		PIDFile:   filepath.Join(stateDir, PIDFile),
		LeaseFile: filepath.Join(stateDir, LeaseFile),
		LogFile:   filepath.Join(stateDir, LogFile),
		HostsDir:  filepath.Join(stateDir, HostsDir),
	}
	var b strings.Builder
	c.writeHeader(&b)
	c.writeDNS(&b, p)
	c.writeRecords(&b, p)
	c.writeDHCP(&b, p)
	c.Text = b.String()
	sum := sha256.Sum256([]byte(c.Text))
	c.Hash = hex.EncodeToString(sum[:])
	return c, nil
}

func checkPlan(p *topology.Plan) error {
	if p.Bridge.Name == "" || !p.Gateway.Is4() || p.Domain == "" {
		return fmt.Errorf("%w: plan of lab %q lacks bridge, gateway or domain", ErrInvalid, p.Lab)
	}
	for _, s := range p.AllSegments() {
		if s.Bridge.Name == "" || !s.Gateway.Is4() || !s.Subnet.Addr().Is4() {
			return fmt.Errorf("%w: segment %q of lab %q lacks bridge, gateway or subnet",
				ErrInvalid, s.Name, p.Lab)
		}
	}
	return nil
}

func (c Config) writeHeader(b *strings.Builder) {
	fmt.Fprintf(b, "# dnsmasq for hybridlab lab %q: DNS and DHCP on %s only.\n", c.Lab,
		strings.Join(c.Bridges, ", "))
	b.WriteString("# Rendered from the lab's IP plan; hybridlab overwrites changes.\n")
	fmt.Fprintf(b, "pid-file=%s\nlog-facility=%s\n", c.PIDFile, c.LogFile)
}

func (c Config) writeDNS(b *strings.Builder, p *topology.Plan) {
	if len(c.Bridges) == 1 {
		b.WriteString("\n# Listen on the lab bridge's address only, never on a wildcard.\n")
	} else {
		b.WriteString("\n# Listen on the lab bridges' gateway addresses only, never on a wildcard.\n")
	}
	for _, br := range c.Bridges {
		fmt.Fprintf(b, "interface=%s\n", br)
	}
	b.WriteString("bind-interfaces\nexcept-interface=lo\n")
	for _, gw := range c.Gateways {
		fmt.Fprintf(b, "listen-address=%s\n", gw)
	}
	b.WriteString("\n# No upstream servers: names outside the lab are refused, never forwarded.\n")
	b.WriteString("no-resolv\nno-hosts\ndomain-needed\nbogus-priv\n")
	fmt.Fprintf(b, "domain=%s\nlocal=/%s/\n", c.Domain, c.Domain)
	for _, z := range reverseZones(p.Subnets()) {
		fmt.Fprintf(b, "local=/%s/\n", z)
	}
	b.WriteString("expand-hosts\n")
	fmt.Fprintf(b, "hostsdir=%s\n", c.HostsDir)
	if len(c.Bridges) == 1 {
		b.WriteString("\n# Authoritative for the lab domain and its reverse zone, on the bridge.\n")
	} else {
		b.WriteString("\n# Authoritative for the lab domain and the segments' reverse zones, " +
			"on the bridges.\n")
	}
	var subnets []string
	for _, s := range p.Subnets() {
		subnets = append(subnets, s.String())
	}
	fmt.Fprintf(b, "auth-server=gw.%s,%s\nauth-zone=%s,%s\n", c.Domain,
		strings.Join(c.Bridges, ","), c.Domain, strings.Join(subnets, ","))
}

func (c Config) writeRecords(b *strings.Builder, p *topology.Plan) {
	b.WriteString("\n# A and PTR records from the plan, not from names clients send.\n")
	fmt.Fprintf(b, "host-record=gw.%s,host.%s,%s\n", c.Domain, c.Domain, c.Listen)
	for _, s := range p.AllSegments()[1:] {
		fmt.Fprintf(b, "host-record=%s.%s,%s\n", GatewayName(s.Name), c.Domain, s.Gateway)
	}
	for _, n := range p.Nodes {
		fmt.Fprintf(b, "host-record=%s.%s,%s,%s\n", n.Name, c.Domain, n.Name, n.IP)
	}
}

// GatewayName is the DNS label of a segment's gateway: "gw" for the main
// segment, "gw-SEG" for segment SEG.
func GatewayName(segment string) string {
	if segment == "" || segment == topology.MainSegment {
		return "gw"
	}
	return "gw-" + segment
}

func (c Config) writeDHCP(b *strings.Builder, p *topology.Plan) {
	segs := p.AllSegments()
	routed := len(segs) > 1
	if routed {
		b.WriteString("\n# DHCP for VMs, per segment (tag seg-NAME): a reservation per VM, " +
			"no router\n# option, the segment's gateway as DNS server, routes to the other " +
			"segments.\n")
	} else {
		b.WriteString("\n# DHCP for VMs: a reservation per VM and nothing else, no router option, " +
			"lab DNS only.\n")
	}
	for _, s := range segs {
		set := ""
		if routed {
			set = "set:" + segmentTag(s.Name) + ","
		}
		// Static mode: only the planned reservations are handed out, so no unknown
		// client can take a reserved or unplanned address from the VM block.
		fmt.Fprintf(b, "dhcp-range=%s%s,static,%s,%s\n", set, s.Subnet.Masked().Addr(),
			netmask(s.Subnet), LeaseTime)
		for _, n := range p.VMs() {
			if p.SegmentOf(n).Name == s.Name {
				fmt.Fprintf(b, "dhcp-host=%s,%s,%s\n", n.MAC, n.IP, n.Name)
			}
		}
	}
	b.WriteString("dhcp-authoritative\ndhcp-ignore-names\ndhcp-option=3\n")
	for _, s := range segs {
		if !routed {
			fmt.Fprintf(b, "dhcp-option=6,%s\n", s.Gateway)
			continue
		}
		tag := "tag:" + segmentTag(s.Name) + ","
		fmt.Fprintf(b, "dhcp-option=%s6,%s\n", tag, s.Gateway)
		fmt.Fprintf(b, "dhcp-option=%s121,%s\n", tag, classlessRoutes(s, segs))
	}
	fmt.Fprintf(b, "dhcp-option=26,%d\n", p.MTU)
	fmt.Fprintf(b, "dhcp-leasefile=%s\nlog-dhcp\n", c.LeaseFile)
}

// segmentTag is the dnsmasq tag of a segment's DHCP clients.
func segmentTag(segment string) string { return "seg-" + segment }

// classlessRoutes is the value of DHCP option 121 for the clients of seg:
// "SUBNET,GATEWAY" for every other segment, via seg's own gateway.
func classlessRoutes(seg topology.SegmentPlan, all []topology.SegmentPlan) string {
	var routes []string
	for _, o := range all {
		if o.Name != seg.Name {
			routes = append(routes, o.Subnet.Masked().String()+","+seg.Gateway.String())
		}
	}
	return strings.Join(routes, ",")
}

// reverseZones lists the reverse zones of subnets, each once, in order.
func reverseZones(subnets []netip.Prefix) []string {
	var out []string
	for _, s := range subnets {
		if z := reverseZone(s); !slices.Contains(out, z) {
			out = append(out, z)
		}
	}
	return out
}

// reverseZone is the in-addr.arpa zone of the whole octets of subnet: for a
// /24 "5.0.10.in-addr.arpa", for a /20 the /16 zone.
func reverseZone(subnet netip.Prefix) string {
	a := subnet.Masked().Addr().As4()
	octets := max(1, subnet.Bits()/8)
	var parts []string
	for i := octets - 1; i >= 0; i-- {
		parts = append(parts, fmt.Sprint(a[i]))
	}
	return strings.Join(parts, ".") + ".in-addr.arpa"
}

func netmask(p netip.Prefix) string {
	m := ^uint32(0) << (32 - p.Bits())
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}
