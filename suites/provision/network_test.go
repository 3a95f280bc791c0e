package provision_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"hybridlab/provision"
	"hybridlab/suites/hostsnap"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

var _ = Describe("setup up --vms=false", labels.Provision, labels.Root, labels.Docker,
	Serial, Ordered, func() {
		var (
			plan   *topology.Plan
			before hostsnap.Snapshot
		)

		BeforeAll(func() {
			plan = labctl.Plan(labctl.LabPath())
			By("starting from a host without the lab")
			labctl.MustSetup(setupBin, labctl.Down, "down")
			var err error
			before, err = hostsnap.Take(context.Background())
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { labctl.Setup(setupBin, "down").Wait(labctl.Down) })
		})

		It("builds the bridge, the guard, dnsmasq and every container", func() {
			labctl.MustSetup(setupBin, labctl.UpNetwork, "up", "--vms=false")

			for _, seg := range plan.AllSegments() {
				By(fmt.Sprintf("finding segment %s's bridge %s with the planned address, MAC "+
					"and MTU, STP off", seg.Name, seg.Bridge.Name))
				out, err := labctl.Run("ip", "-d", "addr", "show", "dev", seg.Bridge.Name)
				Expect(err).NotTo(HaveOccurred())
				Expect(out).To(ContainSubstring(seg.Bridge.Address.String()))
				Expect(out).To(ContainSubstring(seg.Bridge.MAC))
				Expect(out).To(ContainSubstring(fmt.Sprintf("mtu %d", plan.MTU)))
				Expect(out).To(ContainSubstring("stp_state 0"))
			}

			By("finding the guard table with every segment's subnet")
			out, err := labctl.Run("nft", "list", "table", "inet", plan.NFTable)
			Expect(err).NotTo(HaveOccurred())
			for _, subnet := range plan.Subnets() {
				Expect(out).To(ContainSubstring(subnet.String()))
			}

			By("finding every container running with its planned IP and MAC")
			for _, n := range plan.Containers() {
				out, err := labctl.Run("docker", "inspect", "-f",
					"{{.State.Running}} {{range .NetworkSettings.Networks}}{{.IPAddress}} "+
						"{{.MacAddress}}{{end}}", n.Object)
				Expect(err).NotTo(HaveOccurred())
				Expect(strings.Fields(out)).To(Equal([]string{"true", n.IP.String(), n.MAC}),
					"container %s", n.Object)
			}
		})

		It("lets every container ping every other container and the gateway", func() {
			for _, from := range plan.Containers() {
				targets := []string{plan.Gateway.String()}
				for _, to := range plan.Containers() {
					if to.Name != from.Name {
						targets = append(targets, to.IP.String())
					}
				}
				for _, ip := range targets {
					Eventually(func() error {
						_, err := labctl.DockerExec(from.Object, "ping", "-c", "1", "-W", "2", ip)
						return err
					}, labctl.Converge).Should(Succeed(), "%s -> %s", from.Name, ip)
				}
			}
		})

		It("resolves every node's name from every container and from the host", func() {
			for _, from := range plan.Containers() {
				for _, to := range plan.Nodes {
					out, err := labctl.DockerExec(from.Object, "nslookup", to.DNS)
					Expect(err).NotTo(HaveOccurred(), "%s resolves %s", from.Name, to.DNS)
					Expect(out).To(ContainSubstring(to.IP.String()))
				}
			}
			r := labctl.Resolver(plan)
			for _, n := range plan.Nodes {
				addrs, err := r.LookupHost(context.Background(), n.DNS)
				Expect(err).NotTo(HaveOccurred(), "host resolves %s", n.DNS)
				Expect(addrs).To(ConsistOf(n.IP.String()))
				names, err := r.LookupAddr(context.Background(), n.IP.String())
				Expect(err).NotTo(HaveOccurred(), "host reverse-resolves %s", n.IP)
				Expect(names).To(ContainElement(n.DNS + "."))
			}
		})

		It("changes nothing when run a second time", func() {
			ids := containerIDs(plan)
			s := labctl.MustSetup(setupBin, labctl.UpNetwork, "up", "--vms=false")
			Expect(s.Err).To(gbytes.Say("nothing changed"))
			Expect(containerIDs(plan)).To(Equal(ids))
		})

		It("refuses to run while another up or down holds the lab", func() {
			lock, err := provision.AcquireLock(plan.Lab)
			Expect(err).NotTo(HaveOccurred())
			defer lock.Release()
			s := labctl.Setup(setupBin, "up", "--vms=false")
			Eventually(s, labctl.Command).Should(gexec.Exit(1))
			Expect(s.Err).To(gbytes.Say("another setup up/down"))
		})

		It("converges when an up killed half-way is run again", func() {
			labctl.MustSetup(setupBin, labctl.Down, "down")
			s := labctl.Setup(setupBin, "up", "--vms=false")
			Eventually(s.Err, labctl.UpNetwork).Should(gbytes.Say(`==> bridge`))
			s.Kill().Wait(labctl.Command)

			labctl.MustSetup(setupBin, labctl.UpNetwork, "up", "--vms=false")
			for _, n := range plan.Containers() {
				Eventually(func() error {
					_, err := labctl.DockerExec(n.Object, "ping", "-c", "1", "-W", "2",
						plan.Gateway.String())
					return err
				}, labctl.Converge).Should(Succeed(), "%s -> gateway", n.Name)
			}
		})

		Context("with a fake uplink in a network namespace", func() {
			const ns, hostEnd, nsEnd = "hl-uplink", "hlup0", "hlup1"
			const hostAddr, outside = "203.0.113.1/24", "203.0.113.2"

			BeforeAll(func() {
				for _, c := range [][]string{
					{"ip", "netns", "add", ns},
					{"ip", "link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd, "netns", ns},
					{"sysctl", "-qw", "net.ipv6.conf." + hostEnd + ".disable_ipv6=1"},
					{"ip", "addr", "add", hostAddr, "dev", hostEnd},
					{"ip", "link", "set", hostEnd, "up"},
					{"ip", "-n", ns, "addr", "add", outside + "/24", "dev", nsEnd},
					{"ip", "-n", ns, "link", "set", nsEnd, "up"},
				} {
					_, err := labctl.Run(c[0], c[1:]...)
					Expect(err).NotTo(HaveOccurred())
				}
				DeferCleanup(func() {
					_, _ = labctl.Run("ip", "link", "del", hostEnd)
					_, _ = labctl.Run("ip", "netns", "del", ns)
				})
			})

			It("drops lab traffic leaving through it, and lets the host's own through", func() {
				client := plan.Containers()[0].Object
				rx := func() string {
					out, _ := labctl.Run("ip", "netns", "exec", ns, "cat",
						"/sys/class/net/"+nsEnd+"/statistics/rx_packets")
					return strings.TrimSpace(out)
				}
				By("pinging the fake outside address from the host (not lab traffic)")
				_, err := labctl.Run("busybox", "ping", "-c", "1", "-W", "2", outside)
				Expect(err).NotTo(HaveOccurred())

				By("pinging it from a lab container: nothing reaches the uplink")
				seen := rx()
				_, err = labctl.DockerExec(client, "ping", "-c", "3", "-W", "1", outside)
				Expect(err).To(HaveOccurred())
				Expect(rx()).To(Equal(seen))
				out, err := labctl.Run("nft", "list", "table", "inet", plan.NFTable)
				Expect(err).NotTo(HaveOccurred())
				Expect(out).To(MatchRegexp(`counter packets [1-9]\d* bytes \d+ drop`))
			})

			It("lets it through with --allow-egress, and drops it again without", func() {
				client := plan.Containers()[0].Object
				labctl.MustSetup(setupBin, labctl.UpNetwork, "up", "--vms=false", "--allow-egress")
				_, err := labctl.DockerExec(client, "ping", "-c", "1", "-W", "2", outside)
				Expect(err).NotTo(HaveOccurred())

				labctl.MustSetup(setupBin, labctl.UpNetwork, "up", "--vms=false")
				_, err = labctl.DockerExec(client, "ping", "-c", "2", "-W", "1", outside)
				Expect(err).To(HaveOccurred())
			})
		})

		It("keeps the guard while a foreign container holds a lab bridge, then removes all", func() {
			seg := plan.AllSegments()[len(plan.AllSegments())-1]
			const foreign = "hl-foreign"
			By(fmt.Sprintf("starting %s (no lab label) on %s", foreign, seg.Docker.Network))
			_, err := labctl.Run("docker", "run", "-d", "--name", foreign, "--network",
				seg.Docker.Network, topology.DefaultImage, "/usr/local/bin/probe", "serve")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { _, _ = labctl.Run("docker", "rm", "-f", foreign) })

			s := labctl.Setup(setupBin, "down")
			Eventually(s, labctl.Down).Should(gexec.Exit(1))
			Expect(string(s.Err.Contents())).To(ContainSubstring(foreign))
			By("finding the guard and the kept bridge still there")
			_, err = labctl.Run("nft", "list", "table", "inet", plan.NFTable)
			Expect(err).NotTo(HaveOccurred(), "down removed the guard while %s stays",
				seg.Bridge.Name)
			_, err = labctl.Run("ip", "link", "show", seg.Bridge.Name)
			Expect(err).NotTo(HaveOccurred())

			_, err = labctl.Run("docker", "rm", "-f", foreign)
			Expect(err).NotTo(HaveOccurred())
		})

		It("removes everything with down and leaves no residue", func() {
			labctl.MustSetup(setupBin, labctl.Down, "down")
			after, err := hostsnap.Take(context.Background())
			Expect(err).NotTo(HaveOccurred())
			Expect(strings.Join(hostsnap.Diff(before, after), "\n")).To(BeEmpty())
		})
	})

var _ = Describe("setup up", labels.Provision, labels.Root, labels.Docker, Serial, func() {
	Context("when the plan's bridge exists with other settings", func() {
		It("refuses, names the difference and creates nothing", func() {
			file := labctl.LabFile(`name: hlbad
bridge: br-hlbad
subnet: 10.0.3.0/24
management: {subnet: 10.0.4.0/24}
containers: [{name: c1}]
`)
			_, err := labctl.Run("ip", "link", "add", "br-hlbad", "mtu", "9000", "type", "bridge")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() {
				labctl.Setup(setupBin, "down", "-f", file).Wait(labctl.Down)
				_, _ = labctl.Run("ip", "link", "del", "br-hlbad")
			})

			s := labctl.Setup(setupBin, "up", "-f", file, "--vms=false")
			Eventually(s, labctl.UpNetwork).Should(gexec.Exit(1))
			Expect(string(s.Err.Contents())).To(And(ContainSubstring("br-hlbad"),
				ContainSubstring("mtu 9000"), ContainSubstring("1500")))

			By("finding no Docker network, container or nft table of that lab")
			Expect(exec.Command("docker", "network", "inspect", "hlbad-net").Run()).NotTo(Succeed())
			Expect(exec.Command("docker", "inspect", "hlbad-c1").Run()).NotTo(Succeed())
			Expect(exec.Command("nft", "list", "table", "inet", "hybridlab_hlbad").Run()).
				NotTo(Succeed())
		})
	})
})

func containerIDs(p *topology.Plan) map[string]string {
	ids := map[string]string{}
	for _, n := range p.Containers() {
		out, err := labctl.Run("docker", "inspect", "-f", "{{.Id}}", n.Object)
		Expect(err).NotTo(HaveOccurred())
		ids[n.Name] = strings.TrimSpace(out)
	}
	return ids
}
