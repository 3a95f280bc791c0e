package policy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"hybridlab/topology"
)

// tableSpec is one table as Ensure writes it.
type tableSpec struct {
	family nftables.TableFamily
	name   string
	chains []chainSpec
}

// chainSpec is a chain; base chains have a hook.
type chainSpec struct {
	name     string
	hook     *nftables.ChainHook
	priority int
	rules    []ruleSpec
}

// ruleSpec is one nft rule before it is bound to a table.
type ruleSpec struct {
	matches []match
	counter bool
	log     string
	verdict verdict
	comment string
}

// match is one `key value` of a rule: exprs that load the key into
// register 1 and compare it, or load it and look it up in an anonymous set.
type match struct {
	// text is the match in nft syntax; "" hides it, as nft hides a
	// protocol check that a later match implies.
	text  string
	exprs []expr.Any
	set   *setSpec
}

// setSpec is an anonymous constant set looked up from register 1.
type setSpec struct {
	key      nftables.SetDatatype
	interval bool
	elems    []nftables.SetElement
}

// verdict ends a rule: accept, drop, reject, jump, or none (count only).
type verdict struct {
	kind  string // "", "accept", "drop", "reject", "jump"
	chain string
	// tcpReset rejects with a TCP reset rather than ICMP admin-prohibited.
	tcpReset bool
}

// compile builds both tables for pol on plan p.
func compile(p *topology.Plan, pol *topology.Policies) ([]tableSpec, error) {
	rules, err := topology.ResolvePolicies(p, pol)
	if err != nil {
		return nil, err
	}
	c := compiler{plan: p, pol: pol}
	for _, r := range rules {
		if err := c.add(r); err != nil {
			return nil, err
		}
	}
	return []tableSpec{c.inetTable(), c.bridgeTable()}, nil
}

type compiler struct {
	plan                   *topology.Plan
	pol                    *topology.Policies
	forward, input, output []ruleSpec
}

// add places rule r in the chains whose traffic it can match.
func (c *compiler) add(r topology.ResolvedRule) error {
	placed := false
	if len(r.From.Prefixes) > 0 && len(r.To.Prefixes) > 0 {
		c.forward = append(c.forward, c.rule(r, addrMatch("saddr", r.From.Prefixes),
			addrMatch("daddr", r.To.Prefixes)))
		placed = true
	}
	if len(r.From.Prefixes) > 0 && (r.To.Host || slices.ContainsFunc(c.plan.Gateways(),
		func(gw netip.Addr) bool { return containsAddr(r.To.Prefixes, gw) })) {
		var dst []match
		if !r.To.Host {
			dst = addrMatch("daddr", r.To.Prefixes)
		}
		c.input = append(c.input, c.rule(r, addrMatch("saddr", r.From.Prefixes), dst))
		placed = true
	}
	if r.From.Host && len(r.To.Prefixes) > 0 {
		c.output = append(c.output, c.rule(r, nil, addrMatch("daddr", r.To.Prefixes)))
		placed = true
	}
	if !placed {
		return fmt.Errorf("policy rule %q: %w: give it a node or cidr on one side",
			r.Name, ErrNoTraffic)
	}
	return nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

// rule compiles r with the given address matches.
func (c *compiler) rule(r topology.ResolvedRule, src, dst []match) ruleSpec {
	rs := ruleSpec{counter: r.Counter, comment: r.Name}
	if len(src)+len(dst) > 0 {
		rs.matches = nfprotoMatch(unix.NFPROTO_IPV4)
	}
	rs.matches = append(append(rs.matches, src...), dst...)
	rs.matches = append(rs.matches, l4Match(r.Proto, r.Ports)...)
	if r.Log {
		rs.log = logPrefix(c.plan.Lab, r.Name)
	}
	switch r.Action {
	case topology.ActionAccept:
		rs.verdict = verdict{kind: "accept"}
	case topology.ActionDrop:
		rs.verdict = verdict{kind: "drop"}
	case topology.ActionReject:
		rs.verdict = verdict{kind: "reject", tcpReset: r.Proto == topology.ProtoTCP}
	}
	return rs
}

// logPrefix is the kernel log prefix of a rule (at most 127 bytes).
func logPrefix(lab, name string) string {
	s := "hybridlab " + lab + " " + name + ": "
	if len(s) > 127 {
		s = s[:127]
	}
	return s
}

// inetTable filters, on every lab bridge, what is switched or routed between
// lab ports (forward: in from one lab bridge, out to the same or another),
// what goes to the host (input) and what the host sends (output).
func (c *compiler) inetTable() tableSpec {
	brs := c.plan.Bridges()
	t := tableSpec{family: nftables.TableFamilyINet, name: TableName(c.plan.Lab)}
	base := func(name string, hook *nftables.ChainHook, to string, ms ...[]match) chainSpec {
		cs := chainSpec{name: name, hook: hook, priority: Priority}
		for _, m := range ms {
			cs.rules = append(cs.rules, ruleSpec{matches: m,
				verdict: verdict{kind: "jump", chain: to}})
		}
		return cs
	}
	// One jump per bridge or ordered pair of bridges rather than a set of
	// names: google/nftables marks an anonymous set's keys big-endian, so
	// nft would list a set of interface names reversed (as "").
	var pairs, ins, outs [][]match
	for _, a := range brs {
		ins, outs = append(ins, ifMatch("iifname", a)), append(outs, ifMatch("oifname", a))
		for _, b := range brs {
			pairs = append(pairs, append(ifMatch("iifname", a), ifMatch("oifname", b)...))
		}
	}
	t.chains = []chainSpec{
		base(ChainForward, nftables.ChainHookForward, ChainNodesToNodes, pairs...),
		base(ChainInput, nftables.ChainHookInput, ChainNodesToHost, ins...),
		base(ChainOutput, nftables.ChainHookOutput, ChainHostToNodes, outs...),
	}
	fwd := append([]ruleSpec{established(), neighbourDiscovery()}, c.forward...)
	in := append([]ruleSpec{established(), neighbourDiscovery(), dhcp()}, dns(c.plan)...)
	in = append(in, c.input...)
	out := append([]ruleSpec{established()}, c.output...)
	t.chains = append(t.chains,
		chainSpec{name: ChainNodesToNodes, rules: append(fwd, c.rest())},
		chainSpec{name: ChainNodesToHost, rules: append(in, c.rest())},
		chainSpec{name: ChainHostToNodes, rules: append(out, countRest())},
	)
	return t
}

// rest counts, and with default deny drops, what no rule matched.
func (c *compiler) rest() ruleSpec {
	if !c.pol.DefaultDeny() {
		return countRest()
	}
	r := ruleSpec{counter: true, verdict: verdict{kind: "drop"}, comment: CommentDefault}
	if c.pol.Log {
		r.log = logPrefix(c.plan.Lab, "default deny")
	}
	return r
}

func countRest() ruleSpec { return ruleSpec{counter: true, comment: CommentDefault} }

func established() ruleSpec {
	est := binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED)
	m := match{text: "ct state established,related", exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: est,
			Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}}
	return ruleSpec{matches: []match{m}, counter: true, verdict: verdict{kind: "accept"},
		comment: CommentEstablished}
}

// ndTypes are the ICMPv6 types of neighbour discovery (RFC 4861).
var ndTypes = []struct {
	typ  byte
	name string
}{
	{133, "nd-router-solicit"}, {134, "nd-router-advert"}, {135, "nd-neighbor-solicit"},
	{136, "nd-neighbor-advert"}, {137, "nd-redirect"},
}

func neighbourDiscovery() ruleSpec {
	set := &setSpec{key: nftables.TypeICMP6Type}
	var names []string
	for _, t := range ndTypes {
		set.elems = append(set.elems, nftables.SetElement{Key: []byte{t.typ}})
		names = append(names, t.name)
	}
	ms := []match{
		{exprs: cmpMeta(expr.MetaKeyL4PROTO, []byte{unix.IPPROTO_ICMPV6})},
		{text: "icmpv6 type { " + strings.Join(names, ", ") + " }", set: set,
			exprs: []expr.Any{&expr.Payload{DestRegister: 1,
				Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1}}},
	}
	return ruleSpec{matches: ms, counter: true, verdict: verdict{kind: "accept"},
		comment: CommentND}
}

func dhcp() ruleSpec {
	return ruleSpec{matches: l4Match(topology.ProtoUDP, []topology.PortSpec{{First: 67,
		Last: 67}}), counter: true, verdict: verdict{kind: "accept"}, comment: CommentDHCP}
}

// dns accepts DNS to every segment's gateway, where the lab's dnsmasq
// answers.
func dns(p *topology.Plan) []ruleSpec {
	var gws []netip.Prefix
	for _, gw := range p.Gateways() {
		gws = append(gws, netip.PrefixFrom(gw, 32))
	}
	var out []ruleSpec
	for _, proto := range []string{topology.ProtoUDP, topology.ProtoTCP} {
		ms := append(nfprotoMatch(unix.NFPROTO_IPV4), addrMatch("daddr", gws)...)
		ms = append(ms, l4Match(proto, []topology.PortSpec{{First: 53, Last: 53}})...)
		out = append(out, ruleSpec{matches: ms, counter: true,
			verdict: verdict{kind: "accept"}, comment: CommentDNS})
	}
	return out
}

// bridgeTable keeps ARP and IPv4 flowing (IPv4 is filtered in the inet
// table) and, with default deny, lets only neighbour discovery of IPv6
// through (the rules select IPv4 only) and drops every other frame to and
// from lab nodes.
func (c *compiler) bridgeTable() tableSpec {
	rules := []ruleSpec{
		{matches: []match{etherType(unix.ETH_P_ARP, "arp")}, counter: true,
			verdict: verdict{kind: "accept"}, comment: CommentARP},
		{matches: []match{etherType(unix.ETH_P_IP, "ip")}, verdict: verdict{kind: "accept"},
			comment: CommentIP},
	}
	if !c.pol.DefaultDeny() {
		rules = append(rules, ruleSpec{matches: []match{etherType(unix.ETH_P_IPV6, "ip6")},
			verdict: verdict{kind: "accept"}, comment: CommentIP})
	} else {
		nd := neighbourDiscovery()
		nd.matches = append([]match{etherType(unix.ETH_P_IPV6, "")}, nd.matches...)
		rules = append(rules, nd)
		for _, dir := range []string{"saddr", "daddr"} {
			r := c.rest()
			r.matches = []match{c.labMACs(dir)}
			rules = append(rules, r)
		}
	}
	return tableSpec{family: nftables.TableFamilyBridge, name: TableName(c.plan.Lab),
		chains: []chainSpec{{name: ChainForward, hook: nftables.ChainHookForward,
			priority: BridgePriority, rules: rules}}}
}

// etherType matches `ether type NAME`; an empty name hides the match, as
// nft hides it before a match that implies it.
func etherType(typ uint16, name string) match {
	text := ""
	if name != "" {
		text = "ether type " + name
	}
	return match{text: text, exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader, Offset: 12, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(typ)},
	}}
}

// labMACs matches `ether saddr|daddr { node MACs }`.
func (c *compiler) labMACs(dir string) match {
	offset := uint32(6)
	if dir == "daddr" {
		offset = 0
	}
	set := &setSpec{key: nftables.TypeEtherAddr}
	var macs []net.HardwareAddr
	for _, n := range c.plan.Nodes {
		if hw, err := net.ParseMAC(n.MAC); err == nil && len(hw) == 6 {
			macs = append(macs, hw)
		}
	}
	// In byte order, as nft lists a set.
	slices.SortFunc(macs, func(a, b net.HardwareAddr) int { return bytes.Compare(a, b) })
	var texts []string
	for _, hw := range macs {
		set.elems = append(set.elems, nftables.SetElement{Key: hw})
		texts = append(texts, hw.String())
	}
	return match{text: "ether " + dir + " { " + strings.Join(texts, ", ") + " }", set: set,
		exprs: []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseLLHeader,
			Offset: offset, Len: 6}}}
}

func cmpMeta(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// ifMatch matches an interface name exactly (the trailing NUL makes it
// exact rather than a prefix).
func ifMatch(key, name string) []match {
	k := expr.MetaKeyIIFNAME
	if key == "oifname" {
		k = expr.MetaKeyOIFNAME
	}
	return []match{{text: fmt.Sprintf("%s %q", key, name),
		exprs: cmpMeta(k, append([]byte(name), 0))}}
}

// nfprotoMatch is `meta nfproto`, hidden: nft leaves it out before the
// address match that needs it.
func nfprotoMatch(proto byte) []match {
	return []match{{exprs: cmpMeta(expr.MetaKeyNFPROTO, []byte{proto})}}
}

// addrMatch matches `ip saddr|daddr` against prefixes, merged: a compare
// for one address, a mask and compare for one prefix, a range for one
// span, an interval set otherwise. An inet rule needs the IPv4 check
// (nfprotoMatch) before it.
func addrMatch(dir string, ps []netip.Prefix) []match {
	offset := uint32(12)
	if dir == "daddr" {
		offset = 16
	}
	load := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader,
		Offset: offset, Len: 4}}
	key := "ip " + dir + " "
	spans := mergePrefixes(ps)
	if len(spans) == 1 {
		s := spans[0]
		m := match{text: key + s.text(), exprs: load}
		first := u32Addr(s.first).AsSlice()
		p, isPrefix := asPrefix(s)
		switch {
		case s.first == s.last:
			m.exprs = append(m.exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: first})
		case isPrefix:
			m.exprs = append(m.exprs, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: net.CIDRMask(p.Bits(), 32), Xor: make([]byte, 4)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: first})
		default:
			m.exprs = append(m.exprs, &expr.Range{Op: expr.CmpOpEq, Register: 1,
				FromData: first, ToData: u32Addr(s.last).AsSlice()})
		}
		return []match{m}
	}
	set := &setSpec{key: nftables.TypeIPAddr, interval: true}
	var texts []string
	for _, iv := range spans {
		set.elems = append(set.elems, intervalElems(uint64(iv.first), uint64(iv.last), 4)...)
		texts = append(texts, iv.text())
	}
	return []match{{text: key + "{ " + strings.Join(texts, ", ") + " }", exprs: load,
		set: set}}
}

// span is an inclusive range of IPv4 addresses or ports.
type span struct {
	first, last uint32
	port        bool
}

func (s span) text() string {
	if s.port {
		if s.first == s.last {
			return fmt.Sprint(s.first)
		}
		return fmt.Sprintf("%d-%d", s.first, s.last)
	}
	a, b := u32Addr(s.first), u32Addr(s.last)
	if s.first == s.last {
		return a.String()
	}
	if p, ok := asPrefix(s); ok {
		return p.String()
	}
	return a.String() + "-" + b.String()
}

func asPrefix(s span) (netip.Prefix, bool) {
	size := uint64(s.last) - uint64(s.first) + 1
	for bits := 0; bits <= 32; bits++ {
		if uint64(1)<<(32-bits) == size && s.first%uint32(size) == 0 {
			return netip.PrefixFrom(u32Addr(s.first), bits), true
		}
	}
	return netip.Prefix{}, false
}

func u32Addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// mergePrefixes turns prefixes into sorted, disjoint, non-adjacent spans;
// the kernel refuses overlapping intervals in one set.
func mergePrefixes(ps []netip.Prefix) []span {
	var spans []span
	for _, p := range ps {
		first := addrU32(p.Masked().Addr())
		last := first | uint32(uint64(1)<<(32-p.Bits())-1)
		spans = append(spans, span{first: first, last: last})
	}
	return mergeSpans(spans)
}

func mergeSpans(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	var out []span
	for _, s := range spans {
		if n := len(out); n > 0 && uint64(s.first) <= uint64(out[n-1].last)+1 {
			out[n-1].last = max(out[n-1].last, s.last)
			continue
		}
		out = append(out, s)
	}
	return out
}

// intervalElems is [first, last] as interval set elements: the start, and
// the end marker one past last (left out when last is the key's maximum).
func intervalElems(first, last uint64, size int) []nftables.SetElement {
	key := func(v uint64) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, v)
		return b[8-size:]
	}
	out := []nftables.SetElement{{Key: key(first)}}
	if last+1 < uint64(1)<<(8*size) {
		out = append(out, nftables.SetElement{Key: key(last + 1), IntervalEnd: true})
	}
	return out
}

// l4Match matches the protocol and destination ports.
func l4Match(proto string, ports []topology.PortSpec) []match {
	var num byte
	switch proto {
	case topology.ProtoTCP:
		num = unix.IPPROTO_TCP
	case topology.ProtoUDP:
		num = unix.IPPROTO_UDP
	case topology.ProtoICMP:
		num = unix.IPPROTO_ICMP
	default:
		return nil
	}
	l4 := match{text: "meta l4proto " + proto, exprs: cmpMeta(expr.MetaKeyL4PROTO, []byte{num})}
	if len(ports) == 0 {
		return []match{l4}
	}
	l4.text = ""
	return []match{l4, portMatch(proto, ports)}
}

func portMatch(proto string, ports []topology.PortSpec) match {
	load := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader,
		Offset: 2, Len: 2}}
	var spans []span
	for _, p := range ports {
		spans = append(spans, span{first: uint32(p.First), last: uint32(p.Last), port: true})
	}
	spans = mergeSpans(spans)
	for i := range spans {
		spans[i].port = true
	}
	key := proto + " dport "
	port := func(v uint32) []byte { return binaryutil.BigEndian.PutUint16(uint16(v)) }
	if len(spans) == 1 && spans[0].first == spans[0].last {
		return match{text: key + spans[0].text(), exprs: append(load,
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(spans[0].first)})}
	}
	if len(spans) == 1 {
		return match{text: key + spans[0].text(), exprs: append(load, &expr.Range{
			Op: expr.CmpOpEq, Register: 1, FromData: port(spans[0].first),
			ToData: port(spans[0].last)})}
	}
	set := &setSpec{key: nftables.TypeInetService, interval: true}
	var texts []string
	for _, s := range spans {
		set.elems = append(set.elems, intervalElems(uint64(s.first), uint64(s.last), 2)...)
		texts = append(texts, s.text())
	}
	return match{text: key + "{ " + strings.Join(texts, ", ") + " }", exprs: load, set: set}
}
