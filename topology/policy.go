package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Policy defaults and actions.
const (
	PolicyAllow = "allow"
	PolicyDeny  = "deny"

	ActionAccept = "accept"
	ActionDrop   = "drop"
	ActionReject = "reject"

	ProtoTCP  = "tcp"
	ProtoUDP  = "udp"
	ProtoICMP = "icmp"
	ProtoAny  = "any"
)

// Policies are the lab's network policies: which traffic between the
// nodes on the lab bridge, and from them to the host, is allowed. Rules are
// matched in order, the first match decides; traffic no rule matches gets
// Default. Connections already established stay allowed, and ARP, IPv6
// neighbour discovery, DHCP and DNS to the gateway are always allowed so
// the lab keeps working (see package policy).
type Policies struct {
	// Default is "allow" (the default) or "deny".
	Default string `json:"default,omitempty"`
	// Log logs the packets the default deny drops.
	Log   bool         `json:"log,omitempty"`
	Rules []PolicyRule `json:"rules,omitempty"`

	unknown []string
}

var policiesKeys = []string{"default", "log", "rules"}

// UnmarshalJSON decodes the policies and remembers unknown keys for
// Validate.
func (pol *Policies) UnmarshalJSON(data []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return fmt.Errorf("policies: want a mapping with default, log and rules")
	}
	type plain Policies
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	*pol = Policies(p)
	for k := range keys {
		if !slices.Contains(policiesKeys, k) {
			pol.unknown = append(pol.unknown, k)
		}
	}
	slices.Sort(pol.unknown)
	return nil
}

// PolicyRule is one rule of a lab's policies.
type PolicyRule struct {
	Name string     `json:"name"`
	From []Selector `json:"from"`
	To   []Selector `json:"to"`
	// Proto is tcp, udp, icmp or any (the default).
	Proto string `json:"proto,omitempty"`
	// Ports are destination ports or ranges: 80, "8000-8100". Only with tcp
	// or udp; none means every port.
	Ports  []PortSpec `json:"ports,omitempty"`
	Action string     `json:"action"`
	// Counter counts the rule's packets and bytes; on unless false.
	Counter *bool `json:"counter,omitempty"`
	Log     bool  `json:"log,omitempty"`

	// unknown holds keys the rule does not know, reported by Validate
	// with the rule's name.
	unknown []string
}

var policyRuleKeys = []string{"name", "from", "to", "proto", "ports", "action", "counter", "log"}

// UnmarshalJSON decodes a rule and remembers unknown keys, so that
// Validate can name the rule they are in.
func (r *PolicyRule) UnmarshalJSON(data []byte) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return fmt.Errorf("policy rule: want a mapping with name, from, to and action")
	}
	type plain PolicyRule
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("policy rule %s: %w", string(keys["name"]), err)
	}
	*r = PolicyRule(p)
	for k := range keys {
		if !slices.Contains(policyRuleKeys, k) {
			r.unknown = append(r.unknown, k)
		}
	}
	slices.Sort(r.unknown)
	return nil
}

// Counts reports whether the rule counts its packets.
func (r PolicyRule) Counts() bool { return r.Counter == nil || *r.Counter }

// Selector picks addresses: one node, the nodes of a role or kind, a CIDR,
// or the host (the gateway). In YAML: `{node: web}`, `{role: docker}`,
// `{kind: vm}`, `{cidr: 10.0.1.0/28}` or the bare word `host`.
type Selector struct {
	Node string `json:"node,omitempty"`
	Role string `json:"role,omitempty"`
	Kind string `json:"kind,omitempty"`
	CIDR string `json:"cidr,omitempty"`
	// Segment selects a segment's whole subnet.
	Segment string `json:"segment,omitempty"`
	Host    bool   `json:"host,omitempty"`

	// problem is what was wrong with the YAML, reported by Validate.
	problem string
}

var selectorKeys = []string{"node", "role", "kind", "cidr", "segment"}

// UnmarshalJSON accepts `host` or a mapping with exactly one known key;
// anything else is kept as a problem for Validate to report.
func (s *Selector) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	var word string
	if json.Unmarshal(data, &word) == nil {
		if word == "host" {
			*s = Selector{Host: true}
			return nil
		}
		*s = Selector{problem: fmt.Sprintf("%q is not a selector; write host, {node: NAME}, "+
			"{role: ROLE}, {kind: vm|container}, {cidr: CIDR} or {segment: NAME}", word)}
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		*s = Selector{problem: "not a selector; write host, {node: NAME}, {role: ROLE}, " +
			"{kind: vm|container}, {cidr: CIDR} or {segment: NAME}"}
		return nil
	}
	*s = Selector{}
	s.problem = s.fill(m)
	return nil
}

func (s *Selector) fill(m map[string]any) string {
	if len(m) == 0 {
		return "empty selector {}; give one of node, role, kind, cidr or segment, or write host"
	}
	if len(m) > 1 {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return fmt.Sprintf("selector has %d keys (%s); give exactly one per selector and list "+
			"several selectors instead", len(m), strings.Join(keys, ", "))
	}
	for k, v := range m {
		if !slices.Contains(selectorKeys, k) {
			hint := "use node, role, kind, cidr or segment"
			if near := nearest(k, append(selectorKeys, "host")); near != "" {
				hint = fmt.Sprintf("did you mean %q?", near)
			}
			return fmt.Sprintf("unknown selector key %q; %s", k, hint)
		}
		str, ok := v.(string)
		if !ok || str == "" {
			return fmt.Sprintf("selector %s: want a non-empty string, e.g. {%s: %s}", k, k,
				selectorExample(k))
		}
		switch k {
		case "node":
			s.Node = str
		case "role":
			s.Role = str
		case "kind":
			s.Kind = str
		case "cidr":
			s.CIDR = str
		case "segment":
			s.Segment = str
		}
	}
	return ""
}

func selectorExample(key string) string {
	switch key {
	case "role":
		return "docker"
	case "kind":
		return "vm"
	case "cidr":
		return "10.0.1.0/28"
	}
	return "web"
}

// String writes the selector as it is written in lab.yaml.
func (s Selector) String() string {
	switch {
	case s.Host:
		return "host"
	case s.Node != "":
		return "node " + s.Node
	case s.Role != "":
		return "role " + s.Role
	case s.Kind != "":
		return "kind " + s.Kind
	case s.CIDR != "":
		return "cidr " + s.CIDR
	case s.Segment != "":
		return "segment " + s.Segment
	}
	return "{}"
}

// PortSpec is a destination port (80) or an inclusive range ("8000-8100").
type PortSpec struct {
	First, Last int
	// text is the value as written, kept for error messages.
	text string
}

// UnmarshalJSON accepts a whole number or a "FIRST-LAST" string; a value
// out of range is kept for Validate to report.
func (p *PortSpec) UnmarshalJSON(data []byte) error {
	text := strings.Trim(string(bytes.TrimSpace(data)), `"`)
	*p = PortSpec{First: -1, Last: -1, text: text}
	first, last, isRange := strings.Cut(text, "-")
	a, errA := strconv.Atoi(strings.TrimSpace(first))
	if errA != nil {
		return nil
	}
	p.First, p.Last = a, a
	if isRange {
		b, errB := strconv.Atoi(strings.TrimSpace(last))
		if errB != nil {
			p.First, p.Last = -1, -1
			return nil
		}
		p.Last = b
	}
	return nil
}

// MarshalJSON writes a port as a number and a range as "FIRST-LAST".
func (p PortSpec) MarshalJSON() ([]byte, error) {
	if p.First == p.Last {
		return json.Marshal(p.First)
	}
	return json.Marshal(p.String())
}

func (p PortSpec) String() string {
	if p.First == p.Last {
		return strconv.Itoa(p.First)
	}
	return fmt.Sprintf("%d-%d", p.First, p.Last)
}

// MarshalJSON writes a selector in its lab.yaml form.
func (s Selector) MarshalJSON() ([]byte, error) {
	if s.Host {
		return json.Marshal("host")
	}
	type plain struct {
		Node    string `json:"node,omitempty"`
		Role    string `json:"role,omitempty"`
		Kind    string `json:"kind,omitempty"`
		CIDR    string `json:"cidr,omitempty"`
		Segment string `json:"segment,omitempty"`
	}
	return json.Marshal(plain{Node: s.Node, Role: s.Role, Kind: s.Kind, CIDR: s.CIDR,
		Segment: s.Segment})
}

var policyName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// policies validates l.Policies. Nodes are known by name, role and kind
// before the plan assigns addresses, so selectors are checked and
// contradictions found at that level.
func (v *validator) policies(l *Lab) {
	pol := l.Policies
	if pol == nil {
		return
	}
	switch pol.Default {
	case "", PolicyAllow, PolicyDeny:
	default:
		v.addf("policies: default %q; use allow or deny", pol.Default)
	}
	for _, k := range pol.unknown {
		hint := "use default, log or rules"
		if near := nearest(k, policiesKeys); near != "" {
			hint = fmt.Sprintf("did you mean %q?", near)
		}
		v.addf("policies: unknown key %q; %s", k, hint)
	}
	nodes := labNodes(l)
	v.segNames = []string{MainSegment}
	for _, s := range l.Segments {
		v.segNames = append(v.segNames, s.Name)
	}
	seen := map[string]bool{}
	for i, r := range pol.Rules {
		what := fmt.Sprintf("policy rule %q", r.Name)
		if r.Name == "" {
			what = fmt.Sprintf("policy rule #%d", i+1)
			v.addf("%s: no name; give every rule a name (it labels its counter)", what)
		} else if !policyName.MatchString(r.Name) {
			v.addf("%s: name is not 1-32 of a-z, 0-9 and '-'; rename it", what)
		}
		if r.Name != "" && seen[r.Name] {
			v.addf("%s: name used by an earlier rule; give each rule its own name", what)
		}
		seen[r.Name] = true
		for _, k := range r.unknown {
			v.addf("%s: unknown key %q; %s", what, k, ruleKeyHint(k))
		}
		v.policyRule(what, r, nodes)
	}
	v.contradictions(pol, nodes)
}

func ruleKeyHint(k string) string {
	if near := nearest(k, policyRuleKeys); near != "" {
		return fmt.Sprintf("did you mean %q?", near)
	}
	return "use name, from, to, proto, ports, action, counter or log"
}

// nearest returns the word of known closest to k, at most two edits away,
// or "".
func nearest(k string, known []string) string {
	best, bestDist := "", 3
	for _, w := range known {
		if d := editDistance(k, w); d < bestDist {
			best, bestDist = w, d
		}
	}
	return best
}

func (v *validator) policyRule(what string, r PolicyRule, nodes []labNode) {
	switch r.Action {
	case ActionAccept, ActionDrop, ActionReject:
	case "":
		v.addf("%s: no action; set action: accept, drop or reject", what)
	default:
		v.addf("%s: action %q; use accept, drop or reject", what, r.Action)
	}
	for _, side := range []struct {
		name string
		sel  []Selector
	}{{"from", r.From}, {"to", r.To}} {
		if len(side.sel) == 0 {
			v.addf("%s: %s is empty; list at least one selector, e.g. %s: [{node: web}]",
				what, side.name, side.name)
		}
		for j, s := range side.sel {
			if msg := checkSelector(s, nodes); msg != "" {
				v.addf("%s: %s[%d]: %s", what, side.name, j, msg)
			} else if s.Segment != "" && !slices.Contains(v.segNames, s.Segment) {
				v.addf("%s: %s[%d]: unknown segment %q; use one of %s", what, side.name, j,
					s.Segment, strings.Join(v.segNames, ", "))
			}
		}
	}
	if onlyHost(r.From) && onlyHost(r.To) {
		v.addf("%s: from host to host is not lab traffic; put a node or cidr on one side",
			what)
	}
	switch r.Proto {
	case "", ProtoAny, ProtoICMP:
		if len(r.Ports) > 0 {
			v.addf("%s: ports need proto tcp or udp, not %s; set proto or drop the ports",
				what, orAny(r.Proto))
		}
	case ProtoTCP, ProtoUDP:
	default:
		v.addf("%s: proto %q; use tcp, udp, icmp or any", what, r.Proto)
	}
	for _, p := range r.Ports {
		if p.First < 1 || p.Last > 65535 || p.Last < p.First {
			v.addf("%s: port %q: use a port from 1 to 65535 or a range like \"8000-8100\"",
				what, p.text)
		}
	}
}

func onlyHost(sel []Selector) bool {
	return len(sel) > 0 && !slices.ContainsFunc(sel, func(s Selector) bool { return !s.Host })
}

func orAny(proto string) string {
	if proto == "" {
		return ProtoAny
	}
	return proto
}

// labNode is a node as lab.yaml declares it, before the plan places it.
type labNode struct{ name, kind, role string }

func labNodes(l *Lab) []labNode {
	var out []labNode
	for _, vm := range l.VMs {
		out = append(out, labNode{vm.Name, KindVM, vm.Role})
	}
	for _, c := range l.Containers {
		out = append(out, labNode{c.Name, KindContainer, RoleContainer})
	}
	return out
}

func checkSelector(s Selector, nodes []labNode) string {
	if s.problem != "" {
		return s.problem
	}
	switch {
	case s.Node != "":
		if !slices.ContainsFunc(nodes, func(n labNode) bool { return n.name == s.Node }) {
			return fmt.Sprintf("unknown node %q; use the name of a vm or container of the lab",
				s.Node)
		}
	case s.Role != "":
		if !slices.Contains([]string{RoleBase, RoleDocker, RoleObserver, RoleContainer}, s.Role) {
			return fmt.Sprintf("unknown role %q; use base, docker, observer or container", s.Role)
		}
		if len(selectNodes(s, nodes)) == 0 {
			return fmt.Sprintf("role %s selects no node; remove the selector or add such a node",
				s.Role)
		}
	case s.Kind != "":
		if s.Kind != KindVM && s.Kind != KindContainer {
			return fmt.Sprintf("unknown kind %q; use vm or container", s.Kind)
		}
		if len(selectNodes(s, nodes)) == 0 {
			return fmt.Sprintf("kind %s selects no node; remove the selector or add a %s",
				s.Kind, s.Kind)
		}
	case s.CIDR != "":
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil || !p.Addr().Is4() {
			return fmt.Sprintf("cidr %q is not an IPv4 CIDR; write it like 10.0.1.0/28", s.CIDR)
		}
		if p.Masked() != p {
			return fmt.Sprintf("cidr %s has host bits set; use %s", s.CIDR, p.Masked())
		}
	}
	return ""
}

func selectNodes(s Selector, nodes []labNode) []string {
	var out []string
	for _, n := range nodes {
		if n.name == s.Node || n.role == s.Role || n.kind == s.Kind {
			out = append(out, n.name)
		}
	}
	return out
}

// contradictions reports pairs of rules that match the same traffic with
// opposite verdicts: the later one can never take effect.
func (v *validator) contradictions(pol *Policies, nodes []labNode) {
	type seenRule struct{ name, action string }
	first := map[string]seenRule{}
	for _, r := range pol.Rules {
		key, ok := ruleKey(r, nodes)
		if !ok {
			continue
		}
		prev, dup := first[key]
		if !dup {
			first[key] = seenRule{r.Name, r.Action}
			continue
		}
		if (prev.action == ActionAccept) != (r.Action == ActionAccept) {
			v.addf("policy rules %q (%s) and %q (%s) match the same traffic; the second "+
				"never applies: delete one or narrow its from, to, proto or ports",
				prev.name, prev.action, r.Name, r.Action)
		}
	}
}

// ruleKey is a canonical text of the traffic a rule matches, with its
// selectors resolved to node names; ok is false for a rule with problems.
func ruleKey(r PolicyRule, nodes []labNode) (string, bool) {
	side := func(sel []Selector) (string, bool) {
		var parts []string
		for _, s := range sel {
			if checkSelector(s, nodes) != "" {
				return "", false
			}
			switch {
			case s.Host:
				parts = append(parts, "host")
			case s.CIDR != "":
				parts = append(parts, "cidr "+s.CIDR)
			case s.Segment != "":
				parts = append(parts, "segment "+s.Segment)
			default:
				parts = append(parts, selectNodes(s, nodes)...)
			}
		}
		slices.Sort(parts)
		return strings.Join(slices.Compact(parts), ","), len(parts) > 0
	}
	from, okF := side(r.From)
	to, okT := side(r.To)
	var ports []string
	for _, p := range r.Ports {
		ports = append(ports, p.String())
	}
	slices.Sort(ports)
	key := strings.Join([]string{from, to, orAny(r.Proto), strings.Join(ports, ",")}, "|")
	return key, okF && okT && r.Action != ""
}

// ResolvedRule is a policy rule with its selectors resolved against a
// plan: concrete IPv4 prefixes (nodes as /32), plus whether the host is
// selected. Ports are inclusive ranges; empty means every port.
type ResolvedRule struct {
	Name    string
	From    AddrSet
	To      AddrSet
	Proto   string
	Ports   []PortSpec
	Action  string
	Counter bool
	Log     bool
}

// AddrSet is what one side of a rule selects.
type AddrSet struct {
	// Prefixes are sorted, without duplicates.
	Prefixes []netip.Prefix
	// Host is the lab host itself, reached through the bridge (its gateway
	// address or any other local address).
	Host bool
}

// ResolvePolicies resolves pol against p, in rule order. A nil pol
// resolves to no rules. Errors wrap ErrInvalid; pol has normally been
// validated already, as part of the Lab that p was built from.
func ResolvePolicies(p *Plan, pol *Policies) ([]ResolvedRule, error) {
	if pol == nil {
		return nil, nil
	}
	var out []ResolvedRule
	for _, r := range pol.Rules {
		from, err := resolveSide(p, r.From)
		if err != nil {
			return nil, fmt.Errorf("%w: policy rule %q: from: %v", ErrInvalid, r.Name, err)
		}
		to, err := resolveSide(p, r.To)
		if err != nil {
			return nil, fmt.Errorf("%w: policy rule %q: to: %v", ErrInvalid, r.Name, err)
		}
		out = append(out, ResolvedRule{
			Name: r.Name, From: from, To: to, Proto: orAny(r.Proto),
			Ports: append([]PortSpec(nil), r.Ports...), Action: r.Action,
			Counter: r.Counts(), Log: r.Log,
		})
	}
	return out, nil
}

func resolveSide(p *Plan, sel []Selector) (AddrSet, error) {
	var set AddrSet
	for _, s := range sel {
		if s.problem != "" {
			return set, fmt.Errorf("%s", s.problem)
		}
		if s.Host {
			set.Host = true
			continue
		}
		if s.CIDR != "" {
			pfx, err := netip.ParsePrefix(s.CIDR)
			if err != nil || !pfx.Addr().Is4() {
				return set, fmt.Errorf("cidr %q is not an IPv4 CIDR", s.CIDR)
			}
			set.Prefixes = append(set.Prefixes, pfx.Masked())
			continue
		}
		if s.Segment != "" {
			seg, ok := p.Segment(s.Segment)
			if !ok {
				return set, fmt.Errorf("segment %q is not in the plan", s.Segment)
			}
			set.Prefixes = append(set.Prefixes, seg.Subnet.Masked())
			continue
		}
		n := 0
		for _, node := range p.Nodes {
			if node.Name == s.Node || node.Role == s.Role || node.Kind == s.Kind {
				set.Prefixes = append(set.Prefixes, netip.PrefixFrom(node.IP, 32))
				n++
			}
		}
		if n == 0 {
			return set, fmt.Errorf("%s selects no node of the plan", s)
		}
	}
	slices.SortFunc(set.Prefixes, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	set.Prefixes = slices.Compact(set.Prefixes)
	return set, nil
}

// DefaultDeny reports whether traffic no rule matches is dropped.
func (pol *Policies) DefaultDeny() bool { return pol != nil && pol.Default == PolicyDeny }
