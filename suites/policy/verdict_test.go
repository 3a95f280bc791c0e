package policy_test

import (
	"fmt"
	"net/netip"
	"slices"

	"hybridlab/matrix"
	"hybridlab/policy"
	"hybridlab/topology"
)

// outcome is what one probe sees of the traffic it sends.
type outcome string

const (
	// pass: the echo (TCP connect, UDP echo, ICMP echo reply) came back.
	pass outcome = "pass"
	// drop: silence until the probe's timeout.
	drop outcome = "drop"
	// reject: a TCP reset or an ICMP error came back at once.
	reject outcome = "reject"
	// broken: the probe itself could not run (exec failed, bad output).
	broken outcome = "error"
)

// service is one kind of traffic the suite sends between every pair of endpoints.
type service struct {
	proto string // topology.ProtoTCP, ProtoUDP or ProtoICMP
	port  int    // destination port; 0 for ICMP
}

func (s service) String() string {
	if s.port == 0 {
		return s.proto
	}
	return fmt.Sprintf("%s/%d", s.proto, s.port)
}

// services are the agent's TCP and UDP echo and ICMP echo, in the order cells print them.
var services = []service{
	{topology.ProtoTCP, matrix.EchoTCPPort},
	{topology.ProtoUDP, matrix.EchoUDPPort},
	{topology.ProtoICMP, 0},
}

// target is one side of a probe: a lab node, or the host on one segment's gateway.
type target struct {
	name string
	ip   netip.Addr
	host bool
}

// hostName is the host's name in the matrices, on the main segment's gateway; on another
// segment's gateway it is hostName-SEGMENT.
const hostName = "host"

// probeKey is one cell's probe: traffic of one service from one endpoint to another.
type probeKey struct {
	from, to string
	svc      service
}

func (k probeKey) String() string { return fmt.Sprintf("%s -> %s %s", k.from, k.to, k.svc) }

// verdict is what the policy predicts for a probe, and the rule that decides it.
type verdict struct {
	outcome outcome
	rule    string
}

// prediction is the expected verdict of every probe among a set of endpoints.
type prediction map[probeKey]verdict

// predict computes, for every ordered pair of distinct targets and every service, what pol
// lets through on plan p, following the semantics package policy documents:
//
//   - node to node: the lab's rules in order, first match wins; no match gets the default;
//   - node to node across segments (routed by the host): the same as on one bridge;
//   - node to host: the same, where a rule's `to` selects the host when it names `host` or
//     holds the gateway address probed (a cidr or segment); no match gets the default;
//   - host to node: only rules with `from: host` apply; no match is allowed whatever the
//     default, so the host can always manage the lab;
//   - replies of allowed traffic always pass (builtin:established), and ARP, DHCP and DNS to
//     the gateway are always allowed (the suite's services never use the latter two).
//
// A rejected ping is seen as silence: ping counts echo replies only.
func predict(p *topology.Plan, pol *topology.Policies, targets []target) (prediction, error) {
	rules, err := topology.ResolvePolicies(p, pol)
	if err != nil {
		return nil, fmt.Errorf("resolve the policies of lab %q: %w", p.Lab, err)
	}
	out := prediction{}
	for _, from := range targets {
		for _, to := range targets {
			if from.name == to.name || (from.host && to.host) {
				continue
			}
			for _, svc := range services {
				v := decide(rules, pol.DefaultDeny(), from, to, svc)
				if svc.proto == topology.ProtoICMP && v.outcome == reject {
					v.outcome = drop
				}
				out[probeKey{from.name, to.name, svc}] = v
			}
		}
	}
	return out, nil
}

// decide is the verdict of the first rule that matches, else of the default.
func decide(rules []topology.ResolvedRule, deny bool, from, to target, svc service,
) verdict {
	for _, r := range rules {
		if selectsSource(r.From, from) && selectsDest(r.To, to) && carries(r, svc) {
			return verdict{outcome: actionOutcome(r.Action), rule: r.Name}
		}
	}
	if deny && !from.host {
		return verdict{outcome: drop, rule: policy.CommentDefault}
	}
	return verdict{outcome: pass, rule: policy.CommentDefault}
}

func selectsSource(s topology.AddrSet, t target) bool {
	if t.host {
		return s.Host
	}
	return holds(s.Prefixes, t.ip)
}

// selectsDest: a host target's address is the gateway it is probed on.
func selectsDest(s topology.AddrSet, t target) bool {
	if t.host {
		return s.Host || holds(s.Prefixes, t.ip)
	}
	return holds(s.Prefixes, t.ip)
}

func holds(ps []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

func carries(r topology.ResolvedRule, svc service) bool {
	switch {
	case r.Proto == topology.ProtoAny:
		return true
	case r.Proto != svc.proto:
		return false
	case len(r.Ports) == 0:
		return true
	}
	return slices.ContainsFunc(r.Ports, func(ps topology.PortSpec) bool {
		return ps.First <= svc.port && svc.port <= ps.Last
	})
}

func actionOutcome(action string) outcome {
	switch action {
	case topology.ActionAccept:
		return pass
	case topology.ActionReject:
		return reject
	}
	return drop
}

// decidedBy returns, in probe order of keys, one probe that rule decides, or false.
func (pr prediction) decidedBy(rule string, keys []probeKey) (probeKey, bool) {
	for _, k := range keys {
		if pr[k].rule == rule {
			return k, true
		}
	}
	return probeKey{}, false
}
