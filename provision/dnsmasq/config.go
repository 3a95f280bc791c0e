// Package dnsmasq runs a lab's DNS and DHCP server: one dnsmasq process per
// lab, bound to the lab bridge's gateway address only, with no upstream
// servers. Names come from the IP plan (host-record, dhcp-host), never from
// names that DHCP clients send (fault B14); names added after start go into
// a hosts directory that dnsmasq re-reads on change.
package dnsmasq

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
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
	Lab       string
	Bridge    string
	Listen    netip.Addr
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
// The server listens only on the bridge's gateway address (interface=BR,
// bind-interfaces, listen-address=GW, except-interface=lo) and has no
// upstream (no-resolv, no-hosts, no server= lines), so no query ever
// leaves the host. It is authoritative (auth-server on the bridge,
// auth-zone) for the lab domain and the subnet's reverse zone, which local=
// also keeps from ever being forwarded. Every node and the gateway
// (gw.DOMAIN, host.DOMAIN) get A and PTR records, answered with the AA
// bit; a lab name the plan lacks gets NXDOMAIN and any other name REFUSED,
// including bare names such as "vm1": clients reach those through their
// search domain (DHCP option 15, `docker run --dns-search`). Each VM gets a
// DHCP reservation; clients get no router option, so a VM never routes
// through the lab.
func Render(p *topology.Plan, stateDir string) (Config, error) {
	if !filepath.IsAbs(stateDir) {
		return Config{}, fmt.Errorf("%w: state dir %q is not an absolute path", ErrInvalid, stateDir)
	}
	if p.Bridge.Name == "" || !p.Gateway.Is4() || p.Domain == "" {
		return Config{}, fmt.Errorf("%w: plan of lab %q lacks bridge, gateway or domain",
			ErrInvalid, p.Lab)
	}
	c := Config{
		Lab:       p.Lab,
		Bridge:    p.Bridge.Name,
		Listen:    p.Gateway,
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

func (c Config) writeHeader(b *strings.Builder) {
	fmt.Fprintf(b, "# dnsmasq for hybridlab lab %q: DNS and DHCP on %s only.\n", c.Lab, c.Bridge)
	b.WriteString("# Rendered from the lab's IP plan; hybridlab overwrites changes.\n")
	fmt.Fprintf(b, "pid-file=%s\nlog-facility=%s\n", c.PIDFile, c.LogFile)
}

func (c Config) writeDNS(b *strings.Builder, p *topology.Plan) {
	b.WriteString("\n# Listen on the lab bridge's address only, never on a wildcard.\n")
	fmt.Fprintf(b, "interface=%s\nbind-interfaces\nexcept-interface=lo\nlisten-address=%s\n",
		c.Bridge, c.Listen)
	b.WriteString("\n# No upstream servers: names outside the lab are refused, never forwarded.\n")
	b.WriteString("no-resolv\nno-hosts\ndomain-needed\nbogus-priv\n")
	fmt.Fprintf(b, "domain=%s\nlocal=/%s/\nlocal=/%s/\n", c.Domain, c.Domain, reverseZone(p.Subnet))
	b.WriteString("expand-hosts\n")
	fmt.Fprintf(b, "hostsdir=%s\n", c.HostsDir)
	b.WriteString("\n# Authoritative for the lab domain and its reverse zone, on the bridge.\n")
	fmt.Fprintf(b, "auth-server=gw.%s,%s\nauth-zone=%s,%s\n", c.Domain, c.Bridge, c.Domain,
		p.Subnet.Masked())
}

func (c Config) writeRecords(b *strings.Builder, p *topology.Plan) {
	b.WriteString("\n# A and PTR records from the plan, not from names clients send.\n")
	fmt.Fprintf(b, "host-record=gw.%s,host.%s,%s\n", c.Domain, c.Domain, c.Listen)
	for _, n := range p.Nodes {
		fmt.Fprintf(b, "host-record=%s.%s,%s,%s\n", n.Name, c.Domain, n.Name, n.IP)
	}
}

func (c Config) writeDHCP(b *strings.Builder, p *topology.Plan) {
	mask := netmask(p.Subnet)
	b.WriteString("\n# DHCP for VMs: a reservation per VM, no router option, lab DNS only.\n")
	fmt.Fprintf(b, "dhcp-range=%s,%s,%s,%s\n", p.DHCP.First, p.DHCP.Last, mask, LeaseTime)
	for _, n := range p.VMs() {
		fmt.Fprintf(b, "dhcp-host=%s,%s,%s\n", n.MAC, n.IP, n.Name)
	}
	b.WriteString("dhcp-authoritative\ndhcp-ignore-names\n")
	fmt.Fprintf(b, "dhcp-option=3\ndhcp-option=6,%s\n", c.Listen)
	fmt.Fprintf(b, "dhcp-option=26,%d\n", p.MTU)
	fmt.Fprintf(b, "dhcp-leasefile=%s\nlog-dhcp\n", c.LeaseFile)
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
