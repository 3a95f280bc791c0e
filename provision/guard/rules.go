package guard

import (
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// rule is one rule before it is bound to a chain.
type rule struct {
	exprs   []expr.Any
	comment string
	// counted marks the rules whose counter is the guard's egress count.
	counted bool
}

// chainRules is a base chain and its rules in order.
type chainRules struct {
	chain *nftables.Chain
	rules []rule
}

// labTable returns the lab's table and its chains, as Ensure writes them.
func labTable(s Spec) (*nftables.Table, []chainRules) {
	t := &nftables.Table{Name: s.Table, Family: nftables.TableFamilyINet}
	base := func(name string, hook *nftables.ChainHook) *nftables.Chain {
		return &nftables.Chain{
			Name: name, Table: t, Type: nftables.ChainTypeFilter, Hooknum: hook,
			Priority: nftables.ChainPriorityRef(Priority),
			Policy:   policyRef(nftables.ChainPolicyAccept),
		}
	}
	fwd := chainRules{chain: base(ChainForward, nftables.ChainHookForward)}
	for _, b := range s.Bridges {
		fwd.rules = append(fwd.rules, rule{
			exprs:   concat(ifname(expr.MetaKeyOIFNAME, b), verdict(expr.VerdictReturn)),
			comment: "to lab bridge " + b + ": stays on the host",
		})
	}
	for _, b := range s.Bridges {
		fwd.rules = append(fwd.rules, egressRule(s,
			ifname(expr.MetaKeyIIFNAME, b), "from lab bridge "+b))
	}
	for _, p := range s.Subnets {
		fwd.rules = append(fwd.rules, egressRule(s, source(p), "lab source "+p.String()))
	}

	out := chainRules{chain: base(ChainOutput, nftables.ChainHookOutput)}
	for _, name := range append([]string{"lo"}, s.Bridges...) {
		out.rules = append(out.rules, rule{
			exprs:   concat(ifname(expr.MetaKeyOIFNAME, name), verdict(expr.VerdictReturn)),
			comment: "to " + name + ": stays on the host",
		})
	}
	for _, p := range s.Subnets {
		out.rules = append(out.rules, egressRule(s, source(p), "host sends as lab "+p.String()))
	}
	if !s.AllowEgress {
		return t, []chainRules{fwd, out}
	}
	return t, []chainRules{fwd, out, natChain(s, t)}
}

// natChain masquerades, under --allow-egress, lab traffic leaving through an interface
// other than the lab's: a lab of several segments has Docker's own masquerade turned off
// (it would rewrite traffic between segments too), and without it no reply could come back.
// Traffic between lab bridges returns unchanged. Priority srcnat - 1 puts it before
// iptables-nft's POSTROUTING.
func natChain(s Spec, t *nftables.Table) chainRules {
	c := chainRules{chain: &nftables.Chain{
		Name: ChainNAT, Table: t, Type: nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityRef(NATPriority),
		Policy:   policyRef(nftables.ChainPolicyAccept),
	}}
	for _, name := range append([]string{"lo"}, s.Bridges...) {
		c.rules = append(c.rules, rule{
			exprs:   concat(ifname(expr.MetaKeyOIFNAME, name), verdict(expr.VerdictReturn)),
			comment: "to " + name + ": no translation",
		})
	}
	for _, p := range s.Subnets {
		if !p.Addr().Is4() {
			continue
		}
		c.rules = append(c.rules, rule{
			exprs:   concat(source(p), []expr.Any{&expr.Counter{}, &expr.Masq{}}),
			comment: "egress allowed: masquerade lab source " + p.String(),
		})
	}
	return c
}

// egressRule counts, and unless egress is allowed drops, what match
// selects.
func egressRule(s Spec, match []expr.Any, what string) rule {
	r := rule{exprs: concat(match, []expr.Any{&expr.Counter{}}), counted: true}
	if s.AllowEgress {
		r.comment = "egress allowed, counted: " + what
		return r
	}
	r.exprs = append(r.exprs, verdict(expr.VerdictDrop)...)
	r.comment = "egress dropped: " + what
	return r
}

// dockerUserRule is `-i BR -o BR -m comment --comment hybridlab:LAB -j
// ACCEPT` in the expression form iptables-nft itself uses.
func dockerUserRule(lab, in, out string) rule {
	exprs := concat(ifname(expr.MetaKeyIIFNAME, in), ifname(expr.MetaKeyOIFNAME, out),
		[]expr.Any{&expr.Counter{}}, verdict(expr.VerdictAccept))
	return rule{exprs: exprs, comment: Tag(lab)}
}

func (r rule) bind(t *nftables.Table, c *nftables.Chain) *nftables.Rule {
	return &nftables.Rule{
		Table: t, Chain: c, Exprs: r.exprs,
		UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment),
	}
}

// ifname matches the interface name exactly: the trailing NUL is what
// makes iptables-nft read it as an exact name rather than a prefix.
func ifname(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: append([]byte(name), 0)},
	}
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// source matches `ip saddr P` or `ip6 saddr P` in an inet table.
func source(p netip.Prefix) []expr.Any {
	proto, offset, size := byte(unix.NFPROTO_IPV4), uint32(12), 4
	if p.Addr().Is6() {
		proto, offset, size = unix.NFPROTO_IPV6, 8, 16
	}
	out := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{
			DestRegister: 1, Base: expr.PayloadBaseNetworkHeader,
			Offset: offset, Len: uint32(size),
		},
	}
	if p.Bits() < size*8 {
		out = append(out, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: uint32(size),
			Mask: net.CIDRMask(p.Bits(), size*8), Xor: make([]byte, size),
		})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()})
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func policyRef(p nftables.ChainPolicy) *nftables.ChainPolicy { return &p }
