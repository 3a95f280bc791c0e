package policy

import (
	"fmt"
	"strings"

	"github.com/google/nftables"
)

// render writes tables as `nft list table` shows them, without counter
// values.
func render(tables []tableSpec) string {
	var b strings.Builder
	for i, t := range tables {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "table %s %s {\n", familyName(t.family), t.name)
		for j, c := range t.chains {
			if j > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "\tchain %s {\n", c.name)
			if c.hook != nil {
				fmt.Fprintf(&b, "\t\ttype filter hook %s priority %s; policy accept;\n",
					hookName(*c.hook), priorityName(t.family, c.priority))
			}
			for _, r := range c.rules {
				fmt.Fprintf(&b, "\t\t%s\n", r.text())
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func (r ruleSpec) text() string {
	var parts []string
	for _, m := range r.matches {
		if m.text != "" {
			parts = append(parts, m.text)
		}
	}
	if r.counter {
		parts = append(parts, "counter")
	}
	if r.log != "" {
		parts = append(parts, fmt.Sprintf("log prefix %q", r.log))
	}
	if v := r.verdict.text(); v != "" {
		parts = append(parts, v)
	}
	if r.comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.comment))
	}
	return strings.Join(parts, " ")
}

func (v verdict) text() string {
	switch v.kind {
	case "jump":
		return "jump " + v.chain
	case "reject":
		if v.tcpReset {
			return "reject with tcp reset"
		}
		return "reject with icmpx admin-prohibited"
	}
	return v.kind
}

// priorityName writes a priority relative to the family's filter
// priority, as nft lists it: "filter", "filter - 5".
func priorityName(f nftables.TableFamily, p int) string {
	base := 0
	if f == nftables.TableFamilyBridge {
		base = BridgePriority
	}
	switch d := p - base; {
	case d < 0:
		return fmt.Sprintf("filter - %d", -d)
	case d > 0:
		return fmt.Sprintf("filter + %d", d)
	}
	return "filter"
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	}
	return fmt.Sprintf("family%d", f)
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookOutput:
		return "output"
	}
	return fmt.Sprint(h)
}
