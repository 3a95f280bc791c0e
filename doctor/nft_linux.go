package doctor

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"hybridlab/topology"
)

var nftFamilies = map[nftables.TableFamily]string{
	nftables.TableFamilyIPv4:   "ip",
	nftables.TableFamilyIPv6:   "ip6",
	nftables.TableFamilyINet:   "inet",
	nftables.TableFamilyBridge: "bridge",
	nftables.TableFamilyARP:    "arp",
	nftables.TableFamilyNetdev: "netdev",
}

// hookNames covers the ip, ip6, inet and bridge families, which share
// hook numbers.
var hookNames = map[nftables.ChainHook]string{
	0: "prerouting", 1: "input", 2: "forward", 3: "output", 4: "postrouting",
}

// readNFT lists every nftables table, and the input and forward base chains
// of the ip, ip6, inet and bridge families with their drop rules
// (`nft list ruleset`).
func readNFT(_ context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	defer conn.CloseLasting()
	tables, err := conn.ListTables()
	if err != nil {
		return fmt.Errorf("list nft tables: %w", err)
	}
	for _, t := range tables {
		s.NFTTables = append(s.NFTTables, NFTTable{Family: nftFamilies[t.Family], Name: t.Name})
	}
	chains, err := conn.ListChains()
	if err != nil {
		return fmt.Errorf("list nft chains: %w", err)
	}
	for _, c := range chains {
		nc, ok := baseChain(c)
		if !ok {
			continue
		}
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			return fmt.Errorf("list rules of nft chain %s %s %s: %w", nc.Family, nc.Table,
				nc.Name, err)
		}
		for _, r := range rules {
			if d, final := verdictRule(r); final {
				nc.Rules = append(nc.Rules, d)
			}
		}
		s.NFT = append(s.NFT, nc)
	}
	return nil
}

func baseChain(c *nftables.Chain) (NFTChain, bool) {
	fam := nftFamilies[c.Table.Family]
	if c.Hooknum == nil || (fam != "ip" && fam != "ip6" && fam != "inet" && fam != "bridge") {
		return NFTChain{}, false
	}
	hook := hookNames[*c.Hooknum]
	if hook != "input" && hook != "forward" {
		return NFTChain{}, false
	}
	nc := NFTChain{Family: fam, Table: c.Table.Name, Name: c.Name, Hook: hook, Policy: "accept"}
	if c.Priority != nil {
		nc.Priority = int32(*c.Priority)
	}
	if c.Policy != nil && *c.Policy == nftables.ChainPolicyDrop {
		nc.Policy = "drop"
	}
	return nc, true
}

// verdictRule describes r when it ends in accept, drop or reject. A rule
// made only of counters, logs and the verdict matches every packet.
func verdictRule(r *nftables.Rule) (NFTRule, bool) {
	d := NFTRule{Handle: r.Handle, Unconditional: true, OnlyIfnames: true}
	for _, e := range r.Exprs {
		switch v := e.(type) {
		case *expr.Verdict:
			switch v.Kind {
			case expr.VerdictDrop:
				d.Verdict = "drop"
			case expr.VerdictAccept:
				d.Verdict = "accept"
			}
		case *expr.Reject:
			d.Verdict = "drop"
		case *expr.Counter, *expr.Log:
		case *expr.Meta:
			d.OnlyIfnames = d.OnlyIfnames && (v.Key == expr.MetaKeyIIFNAME ||
				v.Key == expr.MetaKeyOIFNAME)
		case *expr.Cmp:
			d.Unconditional = false
			d.OnlyIfnames = d.OnlyIfnames && v.Op == expr.CmpOpEq && cmpOperand(v.Data, &d)
		default:
			d.Unconditional, d.OnlyIfnames = false, false
		}
	}
	d.OnlyIfnames = d.OnlyIfnames && !d.Unconditional
	return d, d.Verdict != ""
}

// cmpOperand records what a comparison matches: an interface name (16
// bytes, NUL padded, or a wildcard prefix) or an IPv4 address. It reports
// whether the operand is an interface name.
func cmpOperand(data []byte, d *NFTRule) bool {
	if len(data) == 4 {
		d.Addrs = append(d.Addrs, netip.AddrFrom4([4]byte(data)))
		return false
	}
	n := len(data)
	for n > 0 && data[n-1] == 0 {
		n--
	}
	if n == 0 || n > topology.MaxIfName {
		return false
	}
	for _, c := range data[:n] {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	d.Ifnames = append(d.Ifnames, string(data[:n]))
	return true
}
