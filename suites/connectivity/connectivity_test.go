package connectivity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"hybridlab/matrix"
	"hybridlab/probes"
	"hybridlab/probes/remote"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

var _ = Describe("the lab's container data plane", labels.Connectivity, labels.Root,
	labels.Docker, Serial, Ordered, ContinueOnFailure, func() {
		BeforeAll(func() { lab.Up(false) })

		Context("with every container and the host on the lab bridge", func() {
			It("passes ICMP, TCP and UDP between every pair, both directions", func() {
				expectMatrix(lab.Endpoints(false))
			})
		})

		Context("with a namespace port on the bridge standing in for a VM", func() {
			It("passes ICMP, TCP and UDP between it, every container and the gateway", func() {
				expectMatrix(append(lab.Endpoints(false), lab.NamespacePort()))
			})
		})

		Context("with containers on segments the host routes between", func() {
			It("routes every cross-segment pair and keeps the sender's address", func() {
				expectRouted(routedPairs(lab.Plan, false))
			})
		})

		Context("when a container is re-created at its planned address", func() {
			It("answers its neighbours again at once, with the same MAC", func() {
				target, from := pickContainers(lab.Plan)
				recreate(target)

				By(fmt.Sprintf("pinging %s from container %s", target.Name, from.Name))
				Eventually(func() error {
					return pingOnce(lab.Agent(from), target.IP.String())
				}, labctl.Recreate).Should(Succeed(), "%s -> re-created %s at %s\n%s",
					from.Name, target.Name, target.IP, labctl.ForwardReport(lab.Plan))
			})
		})
	})

var _ = Describe("the hybrid data plane of VMs and containers", labels.Connectivity,
	labels.Root, labels.Docker, labels.Libvirt, labels.VM, labels.Slow, Serial, Ordered, func() {
		BeforeAll(func() {
			lab.Up(true)
			lab.WaitVMs()
		})

		It("passes ICMP, TCP and UDP between every VM, container and the gateway", func() {
			expectMatrix(lab.Endpoints(true))
		})

		It("routes between VMs and containers on different segments, keeping addresses", func() {
			expectRouted(routedPairs(lab.Plan, true))
		})

		It("reaches a container's published port from every VM at the gateway address", func() {
			ctr, hostPort := publishedPort(lab.Plan)
			target := net.JoinHostPort(lab.Plan.Gateway.String(), hostPort)
			for _, vm := range lab.Plan.VMs() {
				By(fmt.Sprintf("connecting from %s to %s (published by %s)", vm.Name, target,
					ctr.Name))
				res, err := remote.Connect(context.Background(), lab.Agent(vm),
					probes.ConnectConfig{Target: target})
				Expect(err).NotTo(HaveOccurred())
				Expect(res.OK).To(BeTrue(), "%s -> %s: %s (%s)\n%s", vm.Name, target,
					res.Error, res.Kind, labctl.ForwardReport(lab.Plan))
			}
		})

		It("serves a two-tier call by name: a VM calls web, web calls a backend VM", func() {
			client := lab.NodeOfRole(topology.RoleBase)
			backend := lab.NodeOfRole(topology.RoleDocker)
			web := lab.Node("web")
			url := fmt.Sprintf("http://%s:8080/call?url=http://%s:8080/", web.DNS, backend.DNS)

			By(fmt.Sprintf("fetching %s from %s", url, client.Name))
			// The agent's own HTTP client: names resolve through the VM's
			// resolv.conf (the lab DNS) in pure Go, with no libc involved.
			out, err := lab.Exec(client, "probe", "get", "--url", url)
			Expect(err).NotTo(HaveOccurred(), "%s GET %s: %s", client.Name, url, out)
			var got struct {
				Status int    `json:"status"`
				Body   string `json:"body"`
			}
			Expect(json.Unmarshal([]byte(out), &got)).To(Succeed(), "probe get printed %q", out)
			Expect(got.Status).To(Equal(200), "%s GET %s: %s", client.Name, url, got.Body)

			By(fmt.Sprintf("finding %s's answer relayed by %s", backend.Name, web.Name))
			Expect(got.Body).To(ContainSubstring(`"hostname":"%s"`, backend.Name))
			Expect(got.Body).To(ContainSubstring(`"remote":"%s:`, web.IP))
		})

		It("lets a VM reach a re-created container at once, at the same MAC", func() {
			target, _ := pickContainers(lab.Plan)
			vm := lab.Plan.VMs()[0]
			By(fmt.Sprintf("pinging %s from %s so the VM learns its MAC", target.Name, vm.Name))
			Expect(pingOnce(lab.Agent(vm), target.IP.String())).To(Succeed())
			recreate(target)

			By(fmt.Sprintf("pinging the re-created %s from %s", target.Name, vm.Name))
			Eventually(func() error {
				return pingOnce(lab.Agent(vm), target.IP.String())
			}, labctl.Recreate).Should(Succeed(), "%s -> re-created %s at %s\n%s",
				vm.Name, target.Name, target.IP, labctl.ForwardReport(lab.Plan))

			By(fmt.Sprintf("finding %s's neighbour entry for %s still at %s", vm.Name,
				target.IP, target.MAC))
			out, err := lab.Exec(vm, "ip", "neigh", "show", target.IP.String())
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(ContainSubstring("lladdr " + target.MAC))
		})
	})

// expectMatrix runs the connectivity matrix over eps, prints it to the spec's output and
// the report, and fails naming every failed cell with the host's bridged-traffic state.
func expectMatrix(eps []matrix.Endpoint) {
	By(fmt.Sprintf("probing %d endpoints pairwise with ping and probe rr", len(eps)))
	ctx, cancel := context.WithTimeout(context.Background(), labctl.Matrix)
	defer cancel()
	m, err := matrix.Run(ctx, lab.Plan, matrix.Options{Endpoints: eps})
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Print(m.String())
	AddReportEntry("connectivity matrix", m.String())

	By("finding every cell passing")
	if failed := m.Failed(); len(failed) > 0 {
		Fail(fmt.Sprintf("%d of %d cells fail. Likely cause: %s\n%s\n%s", len(failed),
			len(m.Cells), m.Hint(matrix.GatewayName), m, labctl.ForwardReport(lab.Plan)))
	}
}

// pickContainers returns the container to re-create (the first with published ports, else
// the first) and another container to probe it from.
func pickContainers(p *topology.Plan) (target, other topology.Node) {
	cs := p.Containers()
	Expect(len(cs)).To(BeNumerically(">=", 2), "lab %q needs two containers", p.Lab)
	target, other = cs[0], cs[1]
	for i, c := range cs {
		if len(c.Publish) > 0 {
			target, other = c, cs[(i+1)%len(cs)]
			break
		}
	}
	return target, other
}

// recreate removes the container of n and runs `setup up` to create it again, then checks
// it is back at its planned address and MAC.
func recreate(n topology.Node) {
	By(fmt.Sprintf("removing container %s (docker rm -f)", n.Object))
	_, err := labctl.Run("docker", "rm", "-f", n.Object)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(lab.ReUp)

	By("running setup up again")
	lab.ReUp()

	By(fmt.Sprintf("finding %s back at %s with MAC %s", n.Object, n.IP, n.MAC))
	out, err := labctl.Run("docker", "inspect", "-f",
		"{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.MacAddress}}{{end}}", n.Object)
	Expect(err).NotTo(HaveOccurred())
	Expect(strings.Fields(out)).To(Equal([]string{n.IP.String(), n.MAC}))
}

func pingOnce(a matrix.Agent, ip string) error {
	ctx, cancel := context.WithTimeout(context.Background(), labctl.Command)
	defer cancel()
	res, err := remote.Ping(ctx, a, ip, 1)
	if err != nil {
		return err
	}
	if res.Received == 0 {
		return fmt.Errorf("ping %s: no echo reply", ip)
	}
	return nil
}

// publishedPort returns the first container publishing a TCP port and the host port, or
// skips when the lab publishes none.
func publishedPort(p *topology.Plan) (topology.Node, string) {
	for _, c := range p.Containers() {
		for _, pub := range c.Publish {
			spec, proto, _ := strings.Cut(pub, "/")
			host, _, ok := strings.Cut(spec, ":")
			if _, err := strconv.Atoi(host); ok && err == nil && (proto == "" || proto == "tcp") {
				return c, host
			}
		}
	}
	Skip(fmt.Sprintf("no container of lab %q publishes a TCP port (add `publish: "+
		"[\"8080:8080/tcp\"]` to one in the lab file)", p.Lab))
	return topology.Node{}, ""
}

// routedPairs lists every ordered pair of nodes on different segments, VMs included only
// when vms is set (and then only pairs with a VM on one side); it skips the spec when the
// lab has a single segment.
func routedPairs(p *topology.Plan, vms bool) [][2]topology.Node {
	if !p.Routed() {
		Skip(fmt.Sprintf("lab %q has one segment: nothing is routed (declare segments: in the "+
			"lab file)", p.Lab))
	}
	var out [][2]topology.Node
	for _, a := range p.Nodes {
		for _, b := range p.Nodes {
			hasVM := a.Kind == topology.KindVM || b.Kind == topology.KindVM
			if a.Segment == b.Segment || hasVM != vms {
				continue
			}
			out = append(out, [2]topology.Node{a, b})
		}
	}
	if len(out) == 0 {
		Skip(fmt.Sprintf("lab %q has no such pair of nodes on different segments", p.Lab))
	}
	return out
}

// expectRouted fetches the probe's HTTP endpoint across each pair and checks the far side
// saw the sender's own address: the host routes between segments without translating them.
func expectRouted(pairs [][2]topology.Node) {
	for _, pair := range pairs {
		from, to := pair[0], pair[1]
		url := fmt.Sprintf("http://%s:8080/", to.IP)
		By(fmt.Sprintf("fetching %s (%s, segment %s) from %s (segment %s)", url, to.Name,
			to.Segment, from.Name, from.Segment))
		var got struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		}
		Eventually(func() error {
			out, err := lab.Exec(from, "probe", "get", "--url", url)
			if err != nil {
				return fmt.Errorf("%s GET %s: %w: %s", from.Name, url, err, out)
			}
			return json.Unmarshal([]byte(out), &got)
		}, labctl.Command).Should(Succeed(), "%s -> %s across segments\n%s", from.Name,
			to.Name, labctl.ForwardReport(lab.Plan))
		Expect(got.Status).To(Equal(200), "%s GET %s: %s", from.Name, url, got.Body)
		Expect(got.Body).To(ContainSubstring(`"remote":"%s:`, from.IP),
			"%s saw another source than %s (masquerade between segments?)", to.Name, from.IP)
	}
}
