package policy

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"hybridlab/provision/bridge"
	"hybridlab/topology"
)

// Ensure applies the lab's policies: in one netlink transaction it deletes
// and recreates `table inet hybridlab_<lab>_pol` and `table bridge
// hybridlab_<lab>_pol` (`nft -f` of `add table; delete table; table … {
// … }` for both), so either the whole new policy is in force or the old one
// still is. With no policies (pol nil) it removes both tables instead.
// Idempotent; counters restart from zero. Connections already established
// survive (see the package doc).
//
// It refuses with ErrNotFiltered when neither
// net.bridge.bridge-nf-call-iptables nor, for some lab bridge (any
// segment's), the bridge's own nf_call_iptables is 1: the inet table would
// then never see IPv4 traffic switched on it.
func Ensure(p *topology.Plan, pol *topology.Policies) (Result, error) {
	if pol == nil {
		existed, err := Present(p.Lab)
		if err != nil {
			return Result{}, err
		}
		return Result{Removed: existed}, Remove(p.Lab)
	}
	tables, err := compile(p, pol)
	if err != nil {
		return Result{}, err
	}
	for _, br := range p.Bridges() {
		if err := checkFiltered(br); err != nil {
			return Result{}, err
		}
	}
	existed, err := Present(p.Lab)
	if err != nil {
		return Result{}, err
	}
	c, err := nftables.New()
	if err != nil {
		return Result{}, fmt.Errorf("open nftables: %w", err)
	}
	res := Result{Replaced: existed}
	for _, t := range tables {
		n, err := queueTable(c, t)
		if err != nil {
			return Result{}, err
		}
		res.Tables = append(res.Tables, familyName(t.family)+" "+t.name)
		res.Rules += n
	}
	if err := c.Flush(); err != nil {
		return Result{}, fmt.Errorf("apply policy tables %s: %w", TableName(p.Lab), err)
	}
	return res, nil
}

// queueTable queues `add table; delete table; add table` and the table's
// chains, sets and rules, and returns the number of rules.
func queueTable(c *nftables.Conn, ts tableSpec) (int, error) {
	t := &nftables.Table{Name: ts.name, Family: ts.family}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	// Every chain exists before the first rule, so jumps resolve.
	chains := make([]*nftables.Chain, len(ts.chains))
	for i, cs := range ts.chains {
		ch := &nftables.Chain{Name: cs.name, Table: t}
		if cs.hook != nil {
			accept := nftables.ChainPolicyAccept
			ch.Type, ch.Hooknum, ch.Policy = nftables.ChainTypeFilter, cs.hook, &accept
			ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(cs.priority))
		}
		chains[i] = c.AddChain(ch)
	}
	n := 0
	for i, cs := range ts.chains {
		ch := chains[i]
		for _, rs := range cs.rules {
			exprs, err := ruleExprs(c, t, rs)
			if err != nil {
				return 0, fmt.Errorf("policy rule %q in %s %s: %w", rs.comment,
					familyName(ts.family), cs.name, err)
			}
			r := &nftables.Rule{Table: t, Chain: ch, Exprs: exprs}
			if rs.comment != "" {
				r.UserData = userdata.AppendString(nil, userdata.TypeComment, rs.comment)
			}
			c.AddRule(r)
			n++
		}
	}
	return n, nil
}

// ruleExprs turns a rule into expressions, adding its anonymous sets to
// the batch first.
func ruleExprs(c *nftables.Conn, t *nftables.Table, rs ruleSpec) ([]expr.Any, error) {
	var out []expr.Any
	for _, m := range rs.matches {
		out = append(out, m.exprs...)
		if m.set == nil {
			continue
		}
		s := &nftables.Set{Table: t, Anonymous: true, Constant: true,
			Interval: m.set.interval, KeyType: m.set.key}
		if err := c.AddSet(s, m.set.elems); err != nil {
			return nil, fmt.Errorf("add set: %w", err)
		}
		out = append(out, &expr.Lookup{SourceRegister: 1, SetID: s.ID, SetName: s.Name})
	}
	if rs.counter {
		out = append(out, &expr.Counter{})
	}
	if rs.log != "" {
		out = append(out, &expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(rs.log)})
	}
	return append(out, rs.verdict.exprs()...), nil
}

func (v verdict) exprs() []expr.Any {
	switch v.kind {
	case "accept":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	case "drop":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	case "jump":
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: v.chain}}
	case "reject":
		if v.tcpReset {
			return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
		}
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH,
			Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}
	}
	return nil
}

// checkFiltered makes sure br_netfilter hands the bridge's IPv4 frames to
// the IP hooks: globally (`sysctl net.bridge.bridge-nf-call-iptables`) or
// for this bridge (`ip link set BR type bridge nf_call_iptables 1`). A
// bridge that does not exist yet counts as filtered when the global switch
// is on.
func checkFiltered(name string) error {
	if readFlag("/proc/sys/net/bridge/bridge-nf-call-iptables") {
		return nil
	}
	// /proc/sys/net follows the calling thread's namespace; /sys/class/net
	// does not, so the bridge's own switch is read over netlink.
	st, err := bridge.Inspect(name)
	if err == nil && st.NFCallIPTables {
		return nil
	}
	bridge := name
	return fmt.Errorf("policy for bridge %q: %w: net.bridge.bridge-nf-call-iptables is 0 "+
		"and the bridge's nf_call_iptables is off; run `ip link set %s type bridge "+
		"nf_call_iptables 1` (or sysctl -w net.bridge.bridge-nf-call-iptables=1)",
		bridge, ErrNotFiltered, bridge)
}

func readFlag(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

var families = []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge}

// Present reports whether either policy table of lab exists (`nft list
// tables`), for down's residue check.
func Present(lab string) (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("open nftables: %w", err)
	}
	for _, f := range families {
		ok, err := hasTable(c, f, TableName(lab))
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func hasTable(c *nftables.Conn, fam nftables.TableFamily, name string) (bool, error) {
	tables, err := c.ListTablesOfFamily(fam)
	if err != nil {
		return false, fmt.Errorf("list %s tables: %w", familyName(fam), err)
	}
	return slices.ContainsFunc(tables, func(t *nftables.Table) bool {
		return t.Name == name
	}), nil
}

// Remove deletes both policy tables of lab (`nft delete table inet
// hybridlab_<lab>_pol`, the same for bridge) in one transaction. Tables
// already gone are success.
func Remove(lab string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	name := TableName(lab)
	queued := false
	for _, f := range families {
		ok, err := hasTable(c, f, name)
		if err != nil {
			return err
		}
		if ok {
			c.DelTable(&nftables.Table{Name: name, Family: f})
			queued = true
		}
	}
	if !queued {
		return nil
	}
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove policy tables %s: %w", name, err)
	}
	return nil
}

// Status reads the policy tables' counters (`nft list table inet|bridge
// hybridlab_<lab>_pol`) and sums them per rule name, in table order: the
// lab's rules by their names, the builtin ones with BuiltinPrefix. No
// tables means no counters and no error.
func Status(lab string) ([]RuleCounter, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	var out []RuleCounter
	index := map[string]int{}
	for _, f := range families {
		rules, err := tableRules(c, f, TableName(lab))
		if err != nil {
			return nil, err
		}
		for _, r := range rules {
			out = addCounter(out, index, r)
		}
	}
	return out, nil
}

// tableRules lists every rule of table name in family f, chain by chain;
// none when the table does not exist.
func tableRules(c *nftables.Conn, f nftables.TableFamily, name string) (
	[]*nftables.Rule, error,
) {
	if ok, err := hasTable(c, f, name); err != nil || !ok {
		return nil, err
	}
	chains, err := c.ListChainsOfTableFamily(f)
	if err != nil {
		return nil, fmt.Errorf("list %s chains: %w", familyName(f), err)
	}
	t := &nftables.Table{Name: name, Family: f}
	var out []*nftables.Rule
	for _, ch := range chains {
		if ch.Table.Name != name {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s %s %s: %w", familyName(f), name,
				ch.Name, err)
		}
		out = append(out, rules...)
	}
	return out, nil
}

func addCounter(out []RuleCounter, index map[string]int, r *nftables.Rule) []RuleCounter {
	name, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	for _, e := range r.Exprs {
		ctr, ok := e.(*expr.Counter)
		if !ok || name == "" {
			continue
		}
		i, seen := index[name]
		if !seen {
			i = len(out)
			index[name] = i
			out = append(out, RuleCounter{Name: name})
		}
		out[i].Packets += ctr.Packets
		out[i].Bytes += ctr.Bytes
	}
	return out
}
