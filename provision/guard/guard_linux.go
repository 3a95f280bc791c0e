package guard

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Ensure applies the guard for spec and returns what it applied. It is
// idempotent: in one netlink transaction it deletes and recreates the lab
// table (`nft -f` of `add table; delete table; table inet … { … }`), and
// replaces the lab's tagged rules at the top of each existing DOCKER-USER
// chain (`iptables -I DOCKER-USER -i BR -o BR -m comment --comment
// hybridlab:LAB -j ACCEPT`). Either all of it takes effect or none.
// Counters of the rebuilt rules restart from zero.
func Ensure(spec Spec) (Result, error) {
	spec = spec.withDefaults()
	if err := spec.validate(); err != nil {
		return Result{}, err
	}
	var res Result
	var err error
	// A DOCKER-USER rule removed by someone else between reading and
	// writing fails the whole transaction with ENOENT; read again once.
	for range 2 {
		res, err = apply(spec)
		if !errors.Is(err, unix.ENOENT) {
			break
		}
	}
	return res, err
}

func apply(spec Spec) (Result, error) {
	c, err := nftables.New()
	if err != nil {
		return Result{}, fmt.Errorf("open nftables: %w", err)
	}
	existed, err := hasTable(c, spec.Table)
	if err != nil {
		return Result{}, err
	}
	filters, err := readFilters(c, spec.Lab)
	if err != nil {
		return Result{}, err
	}

	t, chains := labTable(spec)
	res := Result{Table: "inet " + spec.Table, Replaced: existed}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, cr := range chains {
		c.AddChain(cr.chain)
		for _, r := range cr.rules {
			c.AddRule(r.bind(t, cr.chain))
			res.Rules++
		}
	}
	for _, f := range filters {
		res.DockerUser = append(res.DockerUser, queueDockerUser(c, f, spec))
	}

	if err := c.Flush(); err != nil {
		return Result{}, fmt.Errorf("apply guard table inet %s: %w", spec.Table, err)
	}
	return res, nil
}

// queueDockerUser replaces the lab's tagged rules in one family's
// DOCKER-USER chain, if the chain exists.
func queueDockerUser(c *nftables.Conn, f filterState, spec Spec) DockerUserResult {
	r := DockerUserResult{Family: f.family, Chain: f.dockerUser != nil}
	if f.dockerUser == nil {
		return r
	}
	for _, old := range f.tagged {
		// DelRule only fails on a zero handle; the kernel always sets one.
		_ = c.DelRule(old)
	}
	// InsertRule prepends, so insert in reverse to keep the pairs' order.
	for _, pair := range slices.Backward(spec.DockerUserPairs()) {
		c.InsertRule(dockerUserRule(spec.Lab, pair[0], pair[1]).bind(f.table, f.dockerUser))
		r.Rules++
	}
	return r
}

// Remove deletes the lab's table (`nft delete table inet hybridlab_LAB`)
// and its tagged DOCKER-USER rules. What is already gone is success.
func Remove(lab string) error {
	name := TableName(lab)
	for range 2 {
		err := remove(lab, name)
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}

func remove(lab, name string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	exists, err := hasTable(c, name)
	if err != nil {
		return err
	}
	filters, err := readFilters(c, lab)
	if err != nil {
		return err
	}
	queued := false
	if exists {
		c.DelTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
		queued = true
	}
	for _, f := range filters {
		for _, r := range f.tagged {
			_ = c.DelRule(r)
			queued = true
		}
	}
	if !queued {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("remove guard of lab %q: %w", lab, err)
	}
	return nil
}

// Status reads the guard of lab with its counters (`nft list table inet
// hybridlab_LAB`, `iptables -vS DOCKER-USER`) and explains it in one line.
func Status(lab string) (State, error) {
	c, err := nftables.New()
	if err != nil {
		return State{}, fmt.Errorf("open nftables: %w", err)
	}
	st := State{Lab: lab, Table: TableName(lab)}
	if st.Present, err = hasTable(c, st.Table); err != nil {
		return State{}, err
	}
	if st.Present {
		if st.Rules, st.Enforcing, err = labRules(c, st.Table); err != nil {
			return State{}, err
		}
	}
	filters, err := readFilters(c, lab)
	if err != nil {
		return State{}, err
	}
	for _, f := range filters {
		st.DockerUser = append(st.DockerUser, f.status())
	}
	st.NFCallIPTables = readFlag("/proc/sys/net/bridge/bridge-nf-call-iptables")
	st.NFCallIP6Tables = readFlag("/proc/sys/net/bridge/bridge-nf-call-ip6tables")
	st.Explanation = explain(st)
	return st, nil
}

func hasTable(c *nftables.Conn, name string) (bool, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list inet tables: %w", err)
	}
	return slices.ContainsFunc(tables, func(t *nftables.Table) bool {
		return t.Name == name
	}), nil
}

// labRules lists the lab table's rules and whether any of them drops.
func labRules(c *nftables.Conn, table string) ([]RuleStatus, bool, error) {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	var out []RuleStatus
	drops := false
	for _, name := range []string{ChainForward, ChainOutput} {
		rules, err := c.GetRules(t, &nftables.Chain{Name: name, Table: t})
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("list rules of inet %s %s: %w", table, name, err)
		}
		for _, r := range rules {
			out = append(out, ruleStatus("inet", table, name, r))
			drops = drops || slices.ContainsFunc(r.Exprs, isDrop)
		}
	}
	return out, drops, nil
}

func isDrop(e expr.Any) bool {
	v, ok := e.(*expr.Verdict)
	return ok && v.Kind == expr.VerdictDrop
}

func ruleStatus(family, table, chain string, r *nftables.Rule) RuleStatus {
	comment := ruleComment(r)
	rs := RuleStatus{
		Family: family, Table: table, Chain: chain, Handle: r.Handle,
		Rule: renderRule(r.Exprs, comment), Comment: comment,
	}
	for _, e := range r.Exprs {
		if ctr, ok := e.(*expr.Counter); ok {
			rs.Counted = family == "inet"
			rs.Packets, rs.Bytes = ctr.Packets, ctr.Bytes
		}
	}
	return rs
}

// filterState is one family's iptables-nft filter table as far as the lab
// cares: its DOCKER-USER chain, its FORWARD policy, the lab's rules.
type filterState struct {
	family     string
	table      *nftables.Table
	dockerUser *nftables.Chain
	forward    *nftables.Chain
	tagged     []*nftables.Rule
	// taggedLabs names the labs of every hybridlab rule in DOCKER-USER.
	taggedLabs []string
}

func readFilters(c *nftables.Conn, lab string) ([]filterState, error) {
	fams := []struct {
		name string
		fam  nftables.TableFamily
	}{{"ip", nftables.TableFamilyIPv4}, {"ip6", nftables.TableFamilyIPv6}}
	var out []filterState
	for _, f := range fams {
		fs, err := readFilter(c, f.name, f.fam, lab)
		if err != nil {
			return nil, err
		}
		out = append(out, fs)
	}
	return out, nil
}

func readFilter(c *nftables.Conn, name string, fam nftables.TableFamily, lab string) (
	filterState, error,
) {
	fs := filterState{family: name, table: &nftables.Table{Name: "filter", Family: fam}}
	chains, err := c.ListChainsOfTableFamily(fam)
	if err != nil {
		return fs, fmt.Errorf("list %s chains: %w", name, err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != "filter" {
			continue
		}
		switch ch.Name {
		case DockerUserChain:
			fs.dockerUser = ch
		case "FORWARD":
			fs.forward = ch
		}
	}
	if fs.dockerUser == nil {
		return fs, nil
	}
	rules, err := c.GetRules(fs.table, fs.dockerUser)
	if err != nil {
		return fs, fmt.Errorf("list %s filter %s: %w", name, DockerUserChain, err)
	}
	for _, r := range rules {
		owner, ok := strings.CutPrefix(ruleComment(r), Tag(""))
		if !ok {
			continue
		}
		fs.taggedLabs = append(fs.taggedLabs, owner)
		if owner == lab {
			fs.tagged = append(fs.tagged, r)
		}
	}
	return fs, nil
}

func (f filterState) status() DockerUserStatus {
	s := DockerUserStatus{Family: f.family, Chain: f.dockerUser != nil}
	if f.forward != nil && f.forward.Policy != nil {
		s.ForwardPolicy = "accept"
		if *f.forward.Policy == nftables.ChainPolicyDrop {
			s.ForwardPolicy = "drop"
		}
	}
	for _, r := range f.tagged {
		s.Rules = append(s.Rules, ruleStatus(f.family, "filter", DockerUserChain, r))
	}
	return s
}

func readFlag(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// Labs returns the names of the labs that have a guard table or tagged
// DOCKER-USER rules in this namespace, sorted, so a sweeper can find
// leftovers (`nft list tables` plus `iptables -S DOCKER-USER`).
func Labs() ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list inet tables: %w", err)
	}
	var labs []string
	for _, t := range tables {
		// Lab names are DNS labels, so a '_' after the prefix marks another
		// table of a lab (its policy table), not a lab.
		if lab, ok := strings.CutPrefix(t.Name, TablePrefix); ok && !strings.Contains(lab, "_") {
			labs = append(labs, lab)
		}
	}
	filters, err := readFilters(c, "")
	if err != nil {
		return nil, err
	}
	for _, f := range filters {
		labs = append(labs, f.taggedLabs...)
	}
	slices.Sort(labs)
	return slices.Compact(labs), nil
}
