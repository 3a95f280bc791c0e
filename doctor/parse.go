package doctor

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// parseIptables reads the output of `iptables -S` (filter table): the
// FORWARD policy and the rules of FORWARD and DOCKER-USER.
func parseIptables(out string) Firewall {
	fw := Firewall{Read: true}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "-P" && f[1] == "FORWARD":
			fw.ForwardPolicy = f[2]
		case len(f) == 2 && f[0] == "-N" && f[1] == "DOCKER-USER":
			fw.DockerUser = true
		case len(f) > 2 && f[0] == "-A" && (f[1] == "FORWARD" || f[1] == "DOCKER-USER"):
			fw.Rules = append(fw.Rules, strings.TrimSpace(line))
		}
	}
	return fw
}

// parseNAT keeps the `-A POSTROUTING` lines of `iptables -t nat -S
// POSTROUTING`.
func parseNAT(out string) []string {
	var rules []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "-A" && f[1] == "POSTROUTING" {
			rules = append(rules, strings.TrimSpace(line))
		}
	}
	return rules
}

// legacyRules keeps the lines of `iptables-legacy -t T -S` that change
// what passes: rules, and policies other than ACCEPT.
func legacyRules(table, out string) []string {
	var rules []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 2 && f[0] == "-A":
			rules = append(rules, "-t "+table+" "+strings.TrimSpace(line))
		case len(f) == 3 && f[0] == "-P" && f[2] != "ACCEPT":
			rules = append(rules, "-t "+table+" "+strings.TrimSpace(line))
		}
	}
	return rules
}

// sockEntry is one line of /proc/net/{tcp,udp}{,6}.
type sockEntry struct {
	local netip.AddrPort
	state string
	inode uint64
}

// parseProcNet reads /proc/net/tcp, udp, tcp6 or udp6. Addresses there are
// hex words in host byte order (little endian on the machines we run on).
func parseProcNet(data string) ([]sockEntry, error) {
	var out []sockEntry
	sc := bufio.NewScanner(strings.NewReader(data))
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 10 {
			continue
		}
		ap, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("parse socket line %q: %w", sc.Text(), err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse socket inode %q: %w", f[9], err)
		}
		out = append(out, sockEntry{local: ap, state: f[3], inode: inode})
	}
	return out, sc.Err()
}

func parseHexAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", p, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 4 or 16 hex bytes", h)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// parseLeases reads a dnsmasq lease file: "expiry mac ip hostname
// client-id" per line; DHCPv6 lines (after "duid") are skipped.
func parseLeases(data string) ([]Lease, error) {
	var out []Lease
	for n, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "duid" {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("lease line %d %q: want expiry mac ip hostname", n+1, line)
		}
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("lease line %d: expiry %q: %w", n+1, f[0], err)
		}
		ip, err := netip.ParseAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("lease line %d: %w", n+1, err)
		}
		if !ip.Is4() {
			continue
		}
		l := Lease{Expiry: exp, MAC: strings.ToLower(f[1]), IP: ip}
		if f[3] != "*" {
			l.Hostname = f[3]
		}
		if len(f) > 4 && f[4] != "*" {
			l.ClientID = f[4]
		}
		out = append(out, l)
	}
	return out, nil
}

type netXML struct {
	Name    string `xml:"name"`
	Forward struct {
		Mode string `xml:"mode,attr"`
	} `xml:"forward"`
	Bridge struct {
		Name string `xml:"name,attr"`
	} `xml:"bridge"`
	IPs []struct {
		Address string `xml:"address,attr"`
		Netmask string `xml:"netmask,attr"`
		Prefix  string `xml:"prefix,attr"`
	} `xml:"ip"`
}

// parseNetXML reads `virsh net-dumpxml` output. A network with an <ip>
// element but no <forward> is isolated; Forward is then "".
func parseNetXML(data []byte) (LibvirtNetwork, error) {
	var x netXML
	if err := xml.Unmarshal(data, &x); err != nil {
		return LibvirtNetwork{}, fmt.Errorf("parse libvirt network xml: %w", err)
	}
	n := LibvirtNetwork{Name: x.Name, Bridge: x.Bridge.Name, Forward: x.Forward.Mode}
	for _, ip := range x.IPs {
		p, err := ipPrefix(ip.Address, ip.Netmask, ip.Prefix)
		if err != nil {
			return LibvirtNetwork{}, fmt.Errorf("libvirt network %q: %w", x.Name, err)
		}
		n.Prefixes = append(n.Prefixes, p)
	}
	return n, nil
}

func ipPrefix(address, netmask, prefix string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return netip.Prefix{}, err
	}
	bits := a.BitLen()
	switch {
	case prefix != "":
		if bits, err = strconv.Atoi(prefix); err != nil {
			return netip.Prefix{}, fmt.Errorf("prefix %q: %w", prefix, err)
		}
	case netmask != "":
		m, err := netip.ParseAddr(netmask)
		if err != nil {
			return netip.Prefix{}, err
		}
		b := m.As4()
		bits = 0
		for _, v := range b {
			for ; v&0x80 != 0; v <<= 1 {
				bits++
			}
		}
	}
	return netip.PrefixFrom(a, bits), nil
}
