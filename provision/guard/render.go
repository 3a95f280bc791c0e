package guard

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// renderRule writes a rule's expressions in nft syntax, without counter
// values, as `nft list` would show them: "oifname "br0" return". It knows
// the expressions the guard and iptables-nft use; anything else shows as
// its Go type, so a golden test notices.
func renderRule(exprs []expr.Any, comment string) string {
	var parts []string
	var loaded string
	prefixLen := -1
	for i, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			loaded, prefixLen = metaName(e.Key), -1
		case *expr.Payload:
			loaded, prefixLen = payloadName(e), -1
		case *expr.Bitwise:
			prefixLen = maskLen(e.Mask)
		case *expr.Cmp:
			if loaded == "meta nfproto" && i+1 < len(exprs) && isPayload(exprs[i+1]) {
				continue // nft leaves out the protocol a payload match implies
			}
			parts = append(parts, loaded+" "+cmpOp(e.Op)+cmpValue(loaded, e.Data, prefixLen))
		case *expr.Counter:
			parts = append(parts, "counter")
		case *expr.Verdict:
			parts = append(parts, verdictName(e))
		case *expr.Match:
			parts = append(parts, "xt match "+e.Name)
		case *expr.Masq:
			parts = append(parts, "masquerade")
		case *expr.Target:
			parts = append(parts, "xt target "+e.Name)
		default:
			parts = append(parts, fmt.Sprintf("%T", e))
		}
	}
	if comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", comment))
	}
	return strings.Join(parts, " ")
}

func ruleComment(r *nftables.Rule) string {
	c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return c
}

func isPayload(e expr.Any) bool {
	_, ok := e.(*expr.Payload)
	return ok
}

func metaName(k expr.MetaKey) string {
	switch k {
	case expr.MetaKeyIIFNAME:
		return "iifname"
	case expr.MetaKeyOIFNAME:
		return "oifname"
	case expr.MetaKeyNFPROTO:
		return "meta nfproto"
	}
	return fmt.Sprintf("meta key %d", k)
}

func payloadName(p *expr.Payload) string {
	if p.Base != expr.PayloadBaseNetworkHeader {
		return fmt.Sprintf("@base%d,%d,%d", p.Base, p.Offset*8, p.Len*8)
	}
	switch [2]uint32{p.Offset, p.Len} {
	case [2]uint32{12, 4}:
		return "ip saddr"
	case [2]uint32{16, 4}:
		return "ip daddr"
	case [2]uint32{8, 16}:
		return "ip6 saddr"
	case [2]uint32{24, 16}:
		return "ip6 daddr"
	}
	return fmt.Sprintf("@nh,%d,%d", p.Offset*8, p.Len*8)
}

func cmpOp(op expr.CmpOp) string {
	switch op {
	case expr.CmpOpEq:
		return ""
	case expr.CmpOpNeq:
		return "!= "
	}
	return fmt.Sprintf("op%d ", op)
}

func cmpValue(loaded string, data []byte, prefixLen int) string {
	switch loaded {
	case "iifname", "oifname":
		return fmt.Sprintf("%q", strings.TrimRight(string(data), "\x00"))
	case "meta nfproto":
		return nfprotoName(data)
	}
	if a, ok := netip.AddrFromSlice(data); ok && strings.Contains(loaded, "addr") {
		if prefixLen >= 0 {
			return netip.PrefixFrom(a, prefixLen).String()
		}
		return a.String()
	}
	return fmt.Sprintf("%#x", data)
}

func nfprotoName(data []byte) string {
	if len(data) == 1 {
		switch data[0] {
		case unix.NFPROTO_IPV4:
			return "ipv4"
		case unix.NFPROTO_IPV6:
			return "ipv6"
		}
	}
	return fmt.Sprintf("%#x", data)
}

func maskLen(mask []byte) int {
	n := 0
	for _, b := range mask {
		n += bits.OnesCount8(b)
	}
	return n
}

func verdictName(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictJump:
		return "jump " + v.Chain
	case expr.VerdictGoto:
		return "goto " + v.Chain
	}
	return fmt.Sprintf("verdict %d", v.Kind)
}

// renderSpec writes everything Ensure applies for s, as text: the lab
// table with its chains and rules, then the DOCKER-USER rules.
func renderSpec(s Spec) string {
	var b strings.Builder
	t, chains := labTable(s)
	fmt.Fprintf(&b, "table inet %s {\n", t.Name)
	for _, c := range chains {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype %s hook %s priority %d; policy accept;\n",
			c.chain.Name, c.chain.Type, hookName(c.chain.Hooknum), *c.chain.Priority)
		for _, r := range c.rules {
			fmt.Fprintf(&b, "\t\t%s\n", renderRule(r.exprs, r.comment))
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	for _, fam := range []string{"ip", "ip6"} {
		fmt.Fprintf(&b, "# inserted at the top of %s filter %s, when that chain exists:\n",
			fam, DockerUserChain)
		for _, pair := range s.DockerUserPairs() {
			r := dockerUserRule(s.Lab, pair[0], pair[1])
			fmt.Fprintf(&b, "%s\n", renderRule(r.exprs, r.comment))
		}
	}
	return b.String()
}

func hookName(h *nftables.ChainHook) string {
	switch {
	case h == nil:
		return "none"
	case *h == *nftables.ChainHookForward:
		return "forward"
	case *h == *nftables.ChainHookPostrouting:
		return "postrouting"
	case *h == *nftables.ChainHookOutput:
		return "output"
	case *h == *nftables.ChainHookInput:
		return "input"
	}
	return fmt.Sprintf("%d", *h)
}
