package dns_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/net/dns/dnsmessage"

	"hybridlab/probes"
	"hybridlab/probes/remote"
	"hybridlab/provision/dnsmasq"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

var _ = Describe("the lab's DNS server", labels.DNS, labels.Root, labels.Docker, Serial, Ordered,
	ContinueOnFailure, func() {
		BeforeAll(func() { lab.Up(false) })

		Context("with the host asking the lab server on the gateway", func() {
			It("answers A and PTR for every node, from the plan", func() {
				for _, n := range lab.Plan.Nodes {
					By(fmt.Sprintf("asking %s for %s (A) and %s (PTR)", lab.Plan.Gateway, n.DNS,
						n.IP))
					expectHostLookup(n)
				}
			})

			It("answers on every segment's gateway", func() {
				if !lab.Plan.Routed() {
					Skip("the lab has one segment")
				}
				for _, seg := range lab.Plan.AllSegments() {
					for _, n := range lab.Plan.Nodes {
						By(fmt.Sprintf("asking %s (segment %s) for %s", seg.Gateway, seg.Name, n.DNS))
						ctx, cancel := context.WithTimeout(context.Background(), labctl.Command)
						a, err := dnsmasq.Query(ctx, seg.Gateway, n.DNS, dnsmessage.TypeA)
						cancel()
						Expect(err).NotTo(HaveOccurred(), "A %s at %s\n%s", n.DNS, seg.Gateway,
							dnsReport())
						Expect(a.Addrs).To(ConsistOf(n.IP), "A %s at %s", n.DNS, seg.Gateway)
					}
				}
			})
		})

		Context("with every container asking", func() {
			It("resolves every node's name and address through the lab server", func() {
				for _, from := range lab.Plan.Containers() {
					By(fmt.Sprintf("querying %s from container %s (probe dns)",
						lab.Plan.SegmentOf(from).Gateway, from.Name))
					for _, n := range lab.Plan.Nodes {
						expectAgentLookup(from, n)
					}
				}
			})

			It("resolves every node's name through the container's own resolver", func() {
				for _, from := range lab.Plan.Containers() {
					By(fmt.Sprintf("running nslookup in %s (Docker's resolver forwards to %s)",
						from.Name, lab.Plan.SegmentOf(from).Gateway))
					for _, n := range lab.Plan.Nodes {
						out, err := labctl.DockerExec(from.Object, "nslookup", n.DNS)
						Expect(err).NotTo(HaveOccurred(), "%s: nslookup %s\n%s", from.Name,
							n.DNS, dnsReport())
						Expect(out).To(ContainSubstring("Address: "+n.IP.String()),
							"%s: nslookup %s", from.Name, n.DNS)
					}
				}
			})
		})

		Context("when a container joins the lab network after up", func() {
			var late lateContainer

			BeforeEach(func() {
				late = lateContainer{name: fmt.Sprintf("late%d", GinkgoRandomSeed()%100000)}
				late.run("")
			})

			It("answers A and PTR for its name", func() {
				late.expectResolves(late.ip())
				ptr, err := query(dnsmasq.ReverseName(late.ip()), dnsmessage.TypePTR)
				Expect(err).NotTo(HaveOccurred())
				Expect(ptr.Names).To(ContainElement(late.fqdn()))
			})

			It("answers with the new address once it is re-created at another one", func() {
				old := late.ip()
				late.expectResolves(old)
				late.remove()
				newIP := freeDockerAddr(old)
				late.run(newIP.String())
				late.expectResolves(newIP)
			})

			It("names a container started by hand on another segment too", func() {
				if !lab.Plan.Routed() {
					Skip("the lab has one segment")
				}
				seg := lab.Plan.AllSegments()[len(lab.Plan.AllSegments())-1]
				other := lateContainer{name: late.name + "s", network: seg.Docker.Network}
				other.run("")
				other.expectResolves(other.ip())
				Expect(seg.Subnet.Contains(other.ip())).To(BeTrue(), "%s is not on segment %s",
					other.ip(), seg.Name)
			})

			It("answers NXDOMAIN once it is removed", func() {
				late.expectResolves(late.ip())
				late.remove()
				By(fmt.Sprintf("asking for %s until the answer is NXDOMAIN", late.fqdn()))
				Eventually(func() dnsmessage.RCode {
					dnsmasqDown()
					a, err := query(late.fqdn(), dnsmessage.TypeA)
					if err != nil {
						return dnsmessage.RCodeServerFailure
					}
					return a.RCode
				}, labctl.Converge).Should(Equal(dnsmessage.RCodeNameError),
					"%s of a removed container still resolves\n%s", late.fqdn(), dnsReport())
			})
		})

		Context("with names outside the lab", func() {
			It("refuses them itself and sends nothing off the host", func() {
				By("reading the rendered dnsmasq config: no upstream servers")
				conf, err := os.ReadFile(filepath.Join(labctl.StateDir(lab.Plan), dnsmasq.ConfFile))
				Expect(err).NotTo(HaveOccurred())
				Expect(string(conf)).To(ContainSubstring("\nno-resolv\n"))
				Expect(string(conf)).NotTo(MatchRegexp(`(?m)^server=`))
				dropped := labctl.GuardDropped(lab.Plan)

				for _, name := range []string{"example.com", "debian.org", "localhost.localdomain"} {
					By(fmt.Sprintf("asking the lab server (only) for %s from the host", name))
					a, err := query(name, dnsmessage.TypeA)
					Expect(err).NotTo(HaveOccurred(), "no answer from %s\n%s",
						lab.Plan.Gateway, dnsReport())
					Expect(a.Addrs).To(BeEmpty())
					Expect(a.RCode).To(BeElementOf(dnsmessage.RCodeRefused,
						dnsmessage.RCodeNameError), "%s: rcode %v", name, a.RCode)

					from := lab.Plan.Containers()[0]
					By(fmt.Sprintf("asking the lab server for %s from %s", name, from.Name))
					res := agentQuery(from, name, "A")
					Expect(res.OK).To(BeTrue(), "%s: %s", from.Name, res.Error)
					Expect(res.Answers).To(BeEmpty())
				}

				By("finding the guard's drop counters unchanged")
				Expect(labctl.GuardDropped(lab.Plan)).To(Equal(dropped),
					"lab traffic tried to leave the host\n%s", labctl.ForwardReport(lab.Plan))
			})
		})
	})

var _ = Describe("the lab's DNS server seen from VMs", labels.DNS, labels.Root, labels.Docker,
	labels.Libvirt, labels.VM, labels.Slow, Serial, Ordered, ContinueOnFailure,
	func() {
		BeforeAll(func() {
			lab.Up(true)
			lab.WaitVMs()
		})

		It("resolves every node's name and address through the lab server", func() {
			for _, from := range lab.Plan.VMs() {
				By(fmt.Sprintf("querying %s from %s (probe dns over SSH)", lab.Plan.Gateway,
					from.Name))
				for _, n := range lab.Plan.Nodes {
					expectAgentLookup(from, n)
				}
			}
		})

		It("resolves every node's name through the VM's own resolver (DHCP's DNS)", func() {
			for _, from := range lab.Plan.VMs() {
				By(fmt.Sprintf("running getent hosts on %s", from.Name))
				for _, n := range lab.Plan.Nodes {
					out, err := lab.Exec(from, "getent", "hosts", n.DNS)
					Expect(err).NotTo(HaveOccurred(), "%s: getent hosts %s\n%s", from.Name,
						n.DNS, vmResolvConf(from))
					Expect(strings.Fields(out)).To(ContainElement(n.IP.String()))
				}
			}
		})
	})

// query asks the lab's server, and only it, one question from the host.
func query(name string, t dnsmessage.Type) (dnsmasq.Answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), labctl.Command)
	defer cancel()
	return dnsmasq.Query(ctx, lab.Plan.Gateway, name, t)
}

func expectHostLookup(n topology.Node) {
	a, err := query(n.DNS, dnsmessage.TypeA)
	Expect(err).NotTo(HaveOccurred(), "A %s\n%s", n.DNS, dnsReport())
	Expect(a.RCode).To(Equal(dnsmessage.RCodeSuccess), "A %s", n.DNS)
	Expect(a.Addrs).To(ConsistOf(n.IP), "A %s", n.DNS)
	ptr, err := query(dnsmasq.ReverseName(n.IP), dnsmessage.TypePTR)
	Expect(err).NotTo(HaveOccurred(), "PTR %s\n%s", n.IP, dnsReport())
	Expect(ptr.Names).To(ContainElement(n.DNS+"."), "PTR %s", n.IP)
}

// agentQuery runs `probe dns --server GATEWAY` on node from, GATEWAY being the host's
// address on from's segment.
func agentQuery(from topology.Node, name, typ string) probes.DNSResult {
	ctx, cancel := context.WithTimeout(context.Background(), labctl.VMCommand)
	defer cancel()
	res, err := remote.DNS(ctx, lab.Agent(from), probes.DNSConfig{
		Server: lab.Plan.SegmentOf(from).Gateway.String(), Name: name, Type: typ})
	Expect(err).NotTo(HaveOccurred(), "%s: probe dns %s %s", from.Name, typ, name)
	return res
}

func expectAgentLookup(from, n topology.Node) {
	a := agentQuery(from, n.DNS, "A")
	Expect(a.OK).To(BeTrue(), "%s: A %s: %s (%s)\n%s", from.Name, n.DNS, a.Error, a.Kind,
		dnsReport())
	Expect(answerData(a)).To(ConsistOf(n.IP.String()), "%s: A %s", from.Name, n.DNS)
	ptr := agentQuery(from, n.IP.String(), "PTR")
	Expect(ptr.OK).To(BeTrue(), "%s: PTR %s: %s", from.Name, n.IP, ptr.Error)
	Expect(answerData(ptr)).To(ContainElement(n.DNS+"."), "%s: PTR %s", from.Name, n.IP)
}

func answerData(r probes.DNSResult) []string {
	var out []string
	for _, a := range r.Answers {
		out = append(out, a.Data)
	}
	return out
}

// dnsReport says whether the lab's DNS server and its Docker sync run, for failure messages.
func dnsReport() string {
	dir := labctl.StateDir(lab.Plan)
	server := fmt.Sprintf("the lab's dnsmasq (config %s) should answer on %s:53",
		filepath.Join(dir, dnsmasq.ConfFile), lab.Plan.Gateway)
	st, err := dnsmasq.Status(dir)
	switch {
	case err != nil:
		server += fmt.Sprintf("; its state is unreadable: %v", err)
	case st.Running:
		server += fmt.Sprintf(" and runs (pid %d)", st.PID)
	default:
		server += " but is NOT running (no live pid in " + dnsmasq.PIDFile + "): nothing " +
			"answers lab names; `setup up` starts it again"
	}
	return server + "\n" + syncReport(dir)
}

// syncReport says whether the lab's DNS sync (`setup dns-sync`, which adds records for
// containers started after up) runs, from its pid file.
func syncReport(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "dnssync.pid"))
	if err != nil {
		return "the lab's DNS sync has no pid file: containers started after up get no names"
	}
	pid := strings.TrimSpace(string(data))
	if _, err := os.Stat("/proc/" + pid); err != nil {
		return "the lab's DNS sync (pid " + pid + ") is NOT running: containers started " +
			"after up get no names"
	}
	return "the lab's DNS sync runs (pid " + pid + ")"
}

// dnsmasqDown stops a polling Eventually at once when the lab's server is not running: waiting
// cannot help.
func dnsmasqDown() {
	if st, err := dnsmasq.Status(labctl.StateDir(lab.Plan)); err == nil && !st.Running {
		StopTrying("the lab's dnsmasq is not running: waiting cannot help").Now()
	}
}

func vmResolvConf(n topology.Node) string {
	out, err := lab.Exec(n, "cat", "/etc/resolv.conf")
	if err != nil {
		return fmt.Sprintf("%s: /etc/resolv.conf unreadable: %v", n.Name, err)
	}
	return n.Name + " /etc/resolv.conf:\n" + out
}

// lateContainer is a container started by hand on the lab network after up, with the lab's
// labels, the way a user adds one.
type lateContainer struct {
	name string
	// network is the Docker network it joins; the main segment's when empty.
	network string
}

func (c lateContainer) net() string {
	if c.network == "" {
		return lab.Plan.Docker.Network
	}
	return c.network
}

func (c lateContainer) object() string { return lab.Plan.Lab + "-" + c.name }
func (c lateContainer) fqdn() string   { return c.name + "." + lab.Plan.Domain + "." }

func (c lateContainer) run(ip string) {
	args := []string{"run", "-d", "--name", c.object(), "--network", c.net(),
		"--label", topology.LabelLab + "=" + lab.Plan.Lab,
		"--label", topology.LabelNode + "=" + c.name,
		"--label", topology.LabelRole + "=" + topology.RoleContainer}
	if ip != "" {
		args = append(args, "--ip", ip)
	}
	args = append(args, topology.DefaultImage, "/usr/local/bin/probe", "serve")
	By(fmt.Sprintf("starting container %s on %s by hand (docker run)", c.object(), c.net()))
	_, err := labctl.Run("docker", args...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _, _ = labctl.Run("docker", "rm", "-f", c.object()) })
}

func (c lateContainer) remove() {
	By(fmt.Sprintf("removing container %s (docker rm -f)", c.object()))
	_, err := labctl.Run("docker", "rm", "-f", c.object())
	Expect(err).NotTo(HaveOccurred())
}

func (c lateContainer) ip() netip.Addr {
	out, err := labctl.Run("docker", "inspect", "-f",
		"{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c.object())
	Expect(err).NotTo(HaveOccurred())
	ip, err := netip.ParseAddr(strings.TrimSpace(out))
	Expect(err).NotTo(HaveOccurred(), "address of %s", c.object())
	return ip
}

// expectResolves waits until the lab server answers the container's name with ip alone.
func (c lateContainer) expectResolves(ip netip.Addr) {
	By(fmt.Sprintf("asking for %s until the lab's DNS sync answers %s", c.fqdn(), ip))
	Eventually(c.lookup, labctl.Converge).Should(Equal(ip),
		"%s (container %s at %s) does not resolve to that address\n%s", c.fqdn(), c.object(),
		ip, dnsReport())
}

func (c lateContainer) lookup() netip.Addr {
	dnsmasqDown()
	a, err := query(c.fqdn(), dnsmessage.TypeA)
	if err != nil || len(a.Addrs) != 1 {
		return netip.Addr{}
	}
	return a.Addrs[0]
}

// freeDockerAddr returns an address of the Docker range that no planned node, no running
// container and not avoid holds.
func freeDockerAddr(avoid netip.Addr) netip.Addr {
	used := map[netip.Addr]bool{avoid: true}
	for _, r := range lab.Plan.Ledger() {
		used[r.IP] = true
	}
	out, _ := labctl.Run("docker", "network", "inspect", "-f",
		"{{range .Containers}}{{.IPv4Address}} {{end}}", lab.Plan.Docker.Network)
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil {
			used[p.Addr()] = true
		}
	}
	r := lab.Plan.Docker.IPRange
	for a := r.Addr().Next(); r.Contains(a); a = a.Next() {
		if !used[a] {
			return a
		}
	}
	Fail("no free address in the Docker range " + lab.Plan.Docker.IPRange.String())
	return netip.Addr{}
}
