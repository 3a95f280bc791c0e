package policy_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"hybridlab/policy"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

// The prediction is the suite's oracle; these specs pin its reading of the policy semantics
// without a lab, so they need neither root nor Docker.
var _ = Describe("the policy suite's prediction and probe order", labels.Policy, func() {
	predictFor := func(policies string) prediction {
		yaml := labHead + labNodes + policies
		if policies == routedPolicies || policies == routedChangedPolicies {
			yaml = labSegmented + policies
		}
		lab, err := topology.Parse([]byte(yaml))
		Expect(err).NotTo(HaveOccurred())
		p, err := topology.NewPlan(lab)
		Expect(err).NotTo(HaveOccurred())
		ts := hostTargets(p)
		for _, n := range p.Nodes {
			ts = append(ts, target{name: n.Name, ip: n.IP})
		}
		want, err := predict(p, lab.Policies, ts)
		Expect(err).NotTo(HaveOccurred())
		return want
	}
	tcp, udp := services[0], services[1]
	icmp := services[2]

	DescribeTable("predicts the verdict of the first matching rule, else of the default",
		func(policies string, k probeKey, want verdict) {
			Expect(predictFor(policies)[k]).To(Equal(want))
		},
		Entry("an allowed port", denyPolicies, probeKey{"client", "web", tcp},
			verdict{pass, "client-to-web"}),
		Entry("a port in an allowed range", denyPolicies, probeKey{"web", "db", tcp},
			verdict{pass, "web-to-db-tcp"}),
		Entry("another protocol to an allowed node", denyPolicies,
			probeKey{"client", "web", udp}, verdict{drop, policy.CommentDefault}),
		Entry("the reverse of an allowed path", denyPolicies, probeKey{"web", "client", tcp},
			verdict{drop, policy.CommentDefault}),
		Entry("a reject after a narrower accept", denyPolicies, probeKey{"client", "db", tcp},
			verdict{reject, "client-db-reject"}),
		Entry("a node to the host by `to: host`", denyPolicies, probeKey{"db", hostName, icmp},
			verdict{pass, "ping-host"}),
		Entry("a node to the host under default deny", denyPolicies,
			probeKey{"db", hostName, tcp}, verdict{drop, policy.CommentDefault}),
		Entry("the host, which default deny does not limit", denyPolicies,
			probeKey{hostName, "client", udp}, verdict{pass, policy.CommentDefault}),
		Entry("the host, limited by a `from: host` rule", denyPolicies,
			probeKey{hostName, "db", tcp}, verdict{drop, "host-not-db"}),
		Entry("a rejected ping, seen as silence", changedPolicies+
			"    - {name: no-ping, from: [{node: web}], to: [{node: client}], proto: icmp,"+
			" action: reject}\n", probeKey{"web", "client", icmp}, verdict{drop, "no-ping"}),
		Entry("a cidr holding the gateway, which selects the host as destination",
			"policies:\n  default: deny\n  rules:\n    - {name: to-subnet, from: [{node: web}],"+
				" to: [{cidr: 10.0.12.0/24}], action: accept}\n",
			probeKey{"web", hostName, udp}, verdict{pass, "to-subnet"}),
		Entry("a cidr holding the gateway, which never selects the host as source",
			"policies:\n  default: allow\n  rules:\n    - {name: from-subnet, from: "+
				"[{cidr: 10.0.12.0/24}], to: [{node: web}], action: drop}\n",
			probeKey{hostName, "web", tcp}, verdict{pass, policy.CommentDefault}),
		Entry("a routed pair a node rule allows", routedPolicies, probeKey{"far1", "web", tcp},
			verdict{pass, "far1-to-web"}),
		Entry("a routed pair a segment selector allows", routedPolicies,
			probeKey{"far2", "db", udp}, verdict{pass, "far-udp-db"}),
		Entry("a routed pair under default deny", routedPolicies, probeKey{"far1", "db", tcp},
			verdict{drop, policy.CommentDefault}),
		Entry("a rejected routed pair", routedPolicies, probeKey{"far2", "web", tcp},
			verdict{reject, "far2-web-reject"}),
		Entry("the host on a gateway of the segment a rule selects", routedPolicies,
			probeKey{"web", hostName + "-far", icmp}, verdict{pass, "main-pings-far"}),
		Entry("the host on the gateway a segment selector holds", routedChangedPolicies,
			probeKey{"far1", hostName, icmp}, verdict{pass, "far-pings-main"}),
		Entry("the host on a gateway a segment selector does not hold", routedChangedPolicies,
			probeKey{"far1", hostName + "-far", icmp}, verdict{drop, policy.CommentDefault}),
	)

	It("schedules every probe once, alternating sources", func() {
		var eps []endpoint
		for _, name := range []string{"a", "b", "c"} {
			eps = append(eps, endpoint{target: target{name: name}})
		}
		order := spread(probeOrder(eps))
		Expect(order).To(ConsistOf(probeOrder(eps)))
		for i := 1; i < len(order); i++ {
			Expect(order[i].from).NotTo(Equal(order[i-1].from), "probes %d and %d", i-1, i)
		}
	})

	It("predicts every probe between every ordered pair", func() {
		Expect(predictFor(denyPolicies)).To(HaveLen(5 * 4 * len(services)))
	})

	It("predicts no probe from the host to itself on another gateway", func() {
		// 5 nodes and 2 host targets: every ordered pair but host <-> host-far.
		Expect(predictFor(routedPolicies)).To(HaveLen((7*6 - 2) * len(services)))
	})
})
