package policy_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"hybridlab/policy"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

// denyPolicies deny by default and allow a two-tier path (client → web → db), pings to the
// host and from the probe container; client → db TCP is rejected, host → db TCP dropped,
// and one drop counts nothing.
const denyPolicies = `policies:
  default: deny
  rules:
    - {name: client-to-web, from: [{node: client}], to: [{node: web}], proto: tcp,
       ports: [7000], action: accept}
    - {name: web-to-db-tcp, from: [{node: web}], to: [{node: db}], proto: tcp,
       ports: ["6990-7010"], action: accept}
    - {name: web-to-db-udp, from: [{node: web}], to: [{node: db}], proto: udp,
       ports: [7001], action: accept}
    - {name: ping-host, from: [{kind: container}], to: [host], proto: icmp, action: accept}
    - {name: probe-pings, from: [{node: probe}], to: [{kind: container}], proto: icmp,
       action: accept}
    - {name: client-db-reject, from: [{node: client}], to: [{node: db}], proto: tcp,
       action: reject}
    - {name: host-not-db, from: [host], to: [{node: db}], proto: tcp, ports: [7000],
       action: drop}
    - {name: quiet, from: [{node: probe}], to: [{node: client}], proto: udp, action: drop,
       counter: false}
`

// changedPolicies allow by default, isolate db, reject UDP to the host and from client to
// web, drop the host's pings to web and reject its TCP to probe.
const changedPolicies = `policies:
  default: allow
  rules:
    - {name: db-isolated, from: [{kind: container}], to: [{node: db}], action: drop}
    - {name: no-udp-to-host, from: [{cidr: 10.0.12.248/29}], to: [host], proto: udp,
       action: reject}
    - {name: host-no-ping-web, from: [host], to: [{node: web}], proto: icmp, action: drop}
    - {name: client-web-udp, from: [{node: client}], to: [{node: web}], proto: udp,
       action: reject}
    - {name: host-probe-tcp, from: [host], to: [{node: probe}], proto: tcp, action: reject}
`

// vmPolicies deny by default between VMs, containers and the host, with a path from the
// VMs to web and from web to the docker VM; base → docker TCP is rejected.
const vmPolicies = `policies:
  default: deny
  rules:
    - {name: vms-to-web, from: [{kind: vm}], to: [{node: web}], proto: tcp, ports: [7000],
       action: accept}
    - {name: web-to-docker-vms, from: [{node: web}], to: [{role: docker}], proto: udp,
       ports: [7001], action: accept}
    - {name: ping-host, from: [{kind: vm}, {kind: container}], to: [host], proto: icmp,
       action: accept}
    - {name: probe-pings, from: [{node: probe}], to: [{kind: vm}, {kind: container}],
       proto: icmp, action: accept}
    - {name: base-docker-reject, from: [{role: base}], to: [{role: docker}], proto: tcp,
       action: reject}
`

// routedPolicies deny by default on a segmented lab: client → web within main, far1 → web
// and far → db across the segments (by node and by {segment: far}), main pings far (which
// holds the host's far gateway), containers ping the host; far2 → web TCP is rejected and
// the host's TCP to far2 dropped.
const routedPolicies = `policies:
  default: deny
  rules:
    - {name: client-to-web, from: [{node: client}], to: [{node: web}], proto: tcp,
       ports: [7000], action: accept}
    - {name: far1-to-web, from: [{node: far1}], to: [{node: web}], proto: tcp,
       ports: [7000], action: accept}
    - {name: far-udp-db, from: [{segment: far}], to: [{node: db}], proto: udp,
       ports: [7001], action: accept}
    - {name: main-pings-far, from: [{segment: main}], to: [{segment: far}], proto: icmp,
       action: accept}
    - {name: far2-web-reject, from: [{node: far2}], to: [{node: web}], proto: tcp,
       action: reject}
    - {name: ping-host, from: [{kind: container}], to: [host], proto: icmp, action: accept}
    - {name: host-not-far2, from: [host], to: [{node: far2}], proto: tcp, action: drop}
`

// routedChangedPolicies move the routed allows: far2 reaches web instead of far1, web sends
// UDP to far, and far pings main instead of the reverse.
const routedChangedPolicies = `policies:
  default: deny
  rules:
    - {name: client-to-web, from: [{node: client}], to: [{node: web}], proto: tcp,
       ports: [7000], action: accept}
    - {name: far2-to-web, from: [{node: far2}], to: [{node: web}], proto: tcp,
       ports: [7000], action: accept}
    - {name: web-udp-far, from: [{node: web}], to: [{segment: far}], proto: udp,
       action: accept}
    - {name: far-pings-main, from: [{segment: far}], to: [{segment: main}], proto: icmp,
       action: accept}
    - {name: far1-db-reject, from: [{node: far1}], to: [{node: db}], proto: tcp,
       action: reject}
`

var _ = Describe("lab network policies", labels.Policy, labels.Root, labels.Docker, Serial,
	func() {
		Context("with containers and the host on the lab bridge", Ordered, func() {
			var lab *testLab

			BeforeAll(func() {
				agentBin = labctl.Agent()
				lab = newTestLab(labHead + labNodes + denyPolicies)
				By("bringing up lab " + labName + " with default-deny policies")
				lab.up(false)
				lab.eps = lab.endpoints(false)
				lab.serveOnHost()
			})

			It("matches the expected matrix", func(ctx SpecContext) {
				expectMatrix(ctx, lab, "default deny")
			})

			It("keeps ARP working under deny", func(ctx SpecContext) {
				a, b := deniedPair(lab)
				expectNeighbour(ctx, a, b)
				expectARPCounted(ctx, lab, a, b)
			})

			It("counts traffic per rule", func(ctx SpecContext) {
				expectCounters(ctx, lab)
			})

			It("changes the observed matrix when the policy changes and up runs again",
				func(ctx SpecContext) {
					before := lab.predict()
					lab.rewrite(labHead + labNodes + changedPolicies)
					Expect(changed(before, lab.predict())).To(BeNumerically(">", 10),
						"the new policies should change many cells")

					By("running setup up again with the new policies")
					s := labctl.MustSetup(setupBin, labctl.UpNetwork, "up", "-f", lab.file,
						"--vms=false")
					Expect(s.Err).To(gbytes.Say(policy.TableName(labName)))
					expectMatrix(ctx, lab, "default allow, after the change")
				})

			It("removes its tables with down", func() {
				labctl.MustSetup(setupBin, labctl.Down, "down", "-f", lab.file)
				Expect(nftTables()).To(BeEmpty(), "nft tables left behind by lab %s", labName)
			})
		})

		Context("with a second segment that the host routes to", Ordered, func() {
			var lab *testLab

			BeforeAll(func() {
				agentBin = labctl.Agent()
				lab = newTestLab(labSegmented + routedPolicies)
				Expect(lab.plan.Routed()).To(BeTrue(), "lab %s has one segment", labName)
				By("bringing up lab " + labName + " with segments main and far, default deny")
				lab.up(false)
				lab.eps = lab.endpoints(false)
				lab.serveOnHost()
			})

			It("matches the expected matrix, routed pairs included", func(ctx SpecContext) {
				Expect(routedPasses(lab)).NotTo(BeEmpty(),
					"the policy should let some traffic between the segments through")
				expectMatrix(ctx, lab, "two segments, default deny")
			})

			It("counts routed traffic per rule", func(ctx SpecContext) {
				expectCounters(ctx, lab)
			})

			It("changes the observed routed pairs when the policy changes and up runs again",
				func(ctx SpecContext) {
					before := routedPasses(lab)
					lab.rewrite(labSegmented + routedChangedPolicies)
					after := routedPasses(lab)
					Expect(after).NotTo(Equal(before), "the routed pairs the policy passes")
					GinkgoWriter.Printf("routed passes before: %v\nrouted passes after: %v\n",
						before, after)

					By("running setup up again with the new policies")
					s := labctl.MustSetup(setupBin, labctl.UpNetwork, "up", "-f", lab.file,
						"--vms=false")
					Expect(s.Err).To(gbytes.Say(policy.TableName(labName)))
					expectMatrix(ctx, lab, "two segments, after the change")
				})

			It("removes its tables with down", func() {
				labctl.MustSetup(setupBin, labctl.Down, "down", "-f", lab.file)
				Expect(nftTables()).To(BeEmpty(), "nft tables left behind by lab %s", labName)
			})
		})

		Context("with VMs, containers and the host on the lab bridge", labels.Libvirt,
			labels.VM, labels.Slow, Ordered, func() {
				var lab *testLab

				BeforeAll(func() {
					skipUnlessLibvirtIsFree()
					agentBin = labctl.Agent()
					lab = newTestLab(labHead + labVMs + labNodes + vmPolicies)
					By("bringing up lab " + labName + " with VMs and default-deny policies")
					lab.up(true)
					lab.eps = lab.endpoints(true)
					lab.waitVMs()
					lab.serveOnHost()
				})

				It("matches the expected matrix", func(ctx SpecContext) {
					expectMatrix(ctx, lab, "VMs, default deny")
				})

				It("counts traffic per rule", func(ctx SpecContext) {
					expectCounters(ctx, lab)
				})

				It("removes its tables with down", func() {
					labctl.MustSetup(setupBin, labctl.Down, "down", "-f", lab.file)
					Expect(nftTables()).To(BeEmpty(), "nft tables left behind by lab %s",
						labName)
				})
			})
	})

// expectMatrix probes the whole matrix until it equals the policy's prediction, and reports
// both side by side: in the failure, or as a report entry.
func expectMatrix(ctx context.Context, lab *testLab, phase string) {
	want := lab.predict()
	var got observed
	runs, start := 0, time.Now()
	By(fmt.Sprintf("probing %d endpoints until the matrix matches the policy (%s)",
		len(lab.eps), phase))
	Eventually(ctx, func(g Gomega) {
		got = observe(ctx, lab.eps)
		runs++
		// Silence may turn into an answer while neighbours resolve; an answer where the
		// policy denies is a leak, never a transient, so it ends the wait at once.
		if len(leaks(lab.eps, want, got)) > 0 {
			StopTrying(fmt.Sprintf("traffic the policy denies passed (%s):\n%s", phase,
				sideBySide(lab.eps, want, got))).Now()
		}
		differ := mismatches(lab.eps, want, got)
		for _, k := range differ {
			GinkgoWriter.Printf("matrix run %d: %s: expected %s, observed %s: %s\n", runs, k,
				want[k].outcome, got[k].outcome, got[k].detail)
		}
		g.Expect(differ).To(BeEmpty(), func() string {
			return fmt.Sprintf("observed matrix differs from the policy (%s):\n%s", phase,
				sideBySide(lab.eps, want, got))
		})
	}).WithTimeout(labctl.PolicyConverge).Should(Succeed())
	AddReportEntry("policy matrix: "+phase, fmt.Sprintf("%d probes, %d run(s), %s\n%s",
		len(want), runs, time.Since(start).Round(time.Millisecond),
		sideBySide(lab.eps, want, got)))
}

// changed counts the probes whose predicted outcome differs between a and b.
func changed(a, b prediction) int {
	n := 0
	for k, v := range a {
		if b[k].outcome != v.outcome {
			n++
		}
	}
	return n
}

// deniedPair returns two containers the policy lets send nothing to each other.
func deniedPair(lab *testLab) (endpoint, endpoint) {
	want := lab.predict()
	blocked := func(from, to string) bool {
		for _, svc := range services {
			if want[probeKey{from, to, svc}].outcome == pass {
				return false
			}
		}
		return true
	}
	for _, a := range lab.eps {
		for _, b := range lab.eps {
			if a.name == b.name || a.node.Kind != topology.KindContainer ||
				b.node.Kind != topology.KindContainer {
				continue
			}
			if blocked(a.name, b.name) && blocked(b.name, a.name) {
				return a, b
			}
		}
	}
	Fail("the policy denies no pair of containers both ways")
	return endpoint{}, endpoint{}
}

// expectNeighbour shows that a resolves b's MAC afresh although the policy drops a's ping.
func expectNeighbour(ctx context.Context, a, b endpoint) {
	pid := containerPID(a)
	By(fmt.Sprintf("flushing %s's neighbour entry for %s (%s)", a.name, b.name, b.ip))
	_, err := labctl.Run("nsenter", "-t", pid, "-n", "ip", "neigh", "flush", "to",
		b.ip.String(), "dev", "eth0")
	Expect(err).NotTo(HaveOccurred())

	By(fmt.Sprintf("pinging %s from %s: the policy drops it", b.name, a.name))
	Expect(pingOnce(ctx, a, b.target).outcome).To(Equal(drop))

	By(fmt.Sprintf("finding %s's MAC %s in %s's neighbour table", b.name, b.node.MAC, a.name))
	Eventually(func() (string, error) {
		return labctl.Run("nsenter", "-t", pid, "-n", "ip", "neigh", "show", "to",
			b.ip.String(), "dev", "eth0")
	}).WithTimeout(labctl.Converge).Should(And(ContainSubstring("lladdr "+b.node.MAC),
		Not(ContainSubstring("FAILED"))))
}

// expectARPCounted arpings b from a and finds the reply and the builtin ARP counter risen.
func expectARPCounted(ctx context.Context, lab *testLab, a, b endpoint) {
	before := lab.counters()[policy.CommentARP].Packets
	By(fmt.Sprintf("arping %s from %s: %s answers ARP (builtin:arp at %d packets)", b.name,
		a.name, b.name, before))
	actx, cancel := context.WithTimeout(ctx, labctl.Command)
	defer cancel()
	out, err := a.agent.Exec(actx, "arping", "-c", "1", "-w", "2", "-I", "eth0",
		b.ip.String())
	Expect(err).NotTo(HaveOccurred(), "arping %s from %s: %s", b.ip, a.name, out)
	Expect(strings.ToLower(string(out))).To(ContainSubstring(b.node.MAC))

	By("finding the builtin ARP counter of setup status risen")
	Eventually(func() uint64 { return lab.counters()[policy.CommentARP].Packets }).
		WithTimeout(labctl.Converge).Should(BeNumerically(">", before))
}

func containerPID(e endpoint) string {
	out, err := labctl.Run("docker", "inspect", "-f", "{{.State.Pid}}", e.node.Object)
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(out)
}

// expectCounters sends, for each counting rule of the lab's policies and for the default,
// one probe the rule decides, and finds each counter of `setup status` risen.
func expectCounters(ctx context.Context, lab *testLab) {
	want := lab.predict()
	keys := probeOrder(lab.eps)
	before := lab.counters()
	var names, quiet []string
	for _, r := range lab.plan.Policies.Rules {
		if r.Counts() {
			names = append(names, r.Name)
		} else {
			quiet = append(quiet, r.Name)
		}
	}
	names = append(names, policy.CommentDefault)
	for _, name := range names {
		k, ok := want.decidedBy(name, keys)
		Expect(ok).To(BeTrue(), "rule %q decides no probe of the matrix", name)
		By(fmt.Sprintf("sending %s, which %q decides (%s)", k, name, want[k].outcome))
		got := probeOnce(ctx, lab.endpoint(k.from), lab.endpoint(k.to).target, k.svc)
		Expect(got.outcome).To(Equal(want[k].outcome), "%s: %s", k, got.detail)
	}

	By("finding each rule's counter in setup status risen")
	var after map[string]policy.RuleCounter
	Eventually(func(g Gomega) {
		after = lab.counters()
		for _, name := range names {
			g.Expect(after[name].Packets).To(BeNumerically(">", before[name].Packets),
				"counter of rule %q", name)
		}
	}).WithTimeout(labctl.Converge).Should(Succeed())
	for _, name := range quiet {
		Expect(after).NotTo(HaveKey(name), "rule %q has counter: false", name)
	}
	var lines []string
	for _, name := range names {
		lines = append(lines, fmt.Sprintf("%-20s %6d -> %6d packets", name,
			before[name].Packets, after[name].Packets))
	}
	AddReportEntry("policy counters", strings.Join(lines, "\n"))
}

// routedPasses lists the probes between nodes of different segments that the lab's policy
// lets through: traffic the host routes.
func routedPasses(lab *testLab) []string {
	want := lab.predict()
	seg := map[string]string{}
	for _, n := range lab.plan.Nodes {
		seg[n.Name] = lab.plan.SegmentOf(n).Name
	}
	var out []string
	for _, k := range probeOrder(lab.eps) {
		a, aok := seg[k.from]
		b, bok := seg[k.to]
		if aok && bok && a != b && want[k].outcome == pass {
			out = append(out, k.String())
		}
	}
	return out
}
