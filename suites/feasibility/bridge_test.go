package feasibility_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/net/dns/dnsmessage"

	"hybridlab/matrix"
	"hybridlab/probes"
	"hybridlab/probes/remote"
	"hybridlab/provision"
	"hybridlab/provision/dnsmasq"
	"hybridlab/provision/libvirt"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

var _ = Describe("the bridge experiment: a VM and a container on one bridge",
	labels.Feasibility, labels.Root, labels.Docker, labels.Libvirt, labels.VM, labels.Slow,
	Serial, Ordered, ContinueOnFailure, func() {
		var port, ctr matrix.Endpoint

		BeforeAll(func() {
			lab.Up(true)
			lab.WaitVMs()
			port = lab.Endpoint(lab.Plan.VMs()[0])
			ctr = lab.Endpoint(lab.Plan.Containers()[0])
		})

		bridgeExperiment(&port, &ctr)

		It("hangs every VM's lab NIC off the lab bridge", func() {
			virt, err := libvirt.Dial(provision.LibvirtSocket)
			Expect(err).NotTo(HaveOccurred())
			defer virt.Close()
			doms, err := virt.Domains(lab.Plan.Lab + "-")
			Expect(err).NotTo(HaveOccurred())
			for _, n := range lab.Plan.VMs() {
				want := lab.Plan.SegmentOf(n).Bridge.Name
				By(fmt.Sprintf("finding %s's NIC %s on %s", n.Object, n.MAC, want))
				Expect(labNIC(doms, n)).To(Equal(want), "domain %s", n.Object)
			}
		})

		It("agrees on every VM's address: A record, plan, lease and guest NIC", func() {
			leases, err := dnsmasq.Leases(labctl.StateDir(lab.Plan))
			Expect(err).NotTo(HaveOccurred())
			By("finding no lease off the plan (dnsmasq.Drift)")
			Expect(dnsmasq.Drift(lab.Plan, leases)).To(BeEmpty(), "lease file %s",
				filepath.Join(labctl.StateDir(lab.Plan), dnsmasq.LeaseFile))
			By("finding no address leased to two MACs")
			Expect(sharedLeases(leases)).To(BeEmpty())

			for _, n := range lab.Plan.VMs() {
				By(fmt.Sprintf("comparing %s: plan %s, A record, lease, guest NIC", n.Name, n.IP))
				a, err := dnsmasq.Query(context.Background(), lab.Plan.SegmentOf(n).Gateway, n.DNS,
					dnsmessage.TypeA)
				Expect(err).NotTo(HaveOccurred())
				Expect(a.Addrs).To(ConsistOf(n.IP), "A %s", n.DNS)
				Expect(leaseOf(leases, n.MAC)).To(Equal(n.IP), "lease of %s (%s)", n.Name, n.MAC)
				Expect(guestAddr(n)).To(Equal(n.IP), "address on %s's NIC %s", n.Name, n.MAC)
			}
		})
	})

var _ = Describe("the bridge experiment: a namespace port and a container on one bridge",
	labels.Feasibility, labels.Root, labels.Docker, Serial, Ordered, ContinueOnFailure, func() {
		var port, ctr matrix.Endpoint

		BeforeAll(func() {
			lab.Up(false)
			port = lab.NamespacePort()
			ctr = lab.Endpoint(lab.Plan.Containers()[0])
		})

		bridgeExperiment(&port, &ctr)
	})

// bridgeExperiment declares the specs every non-Docker port on the lab bridge must pass
// with a container: *port is a VM or a namespace standing in for one, set by BeforeAll.
func bridgeExperiment(port, ctr *matrix.Endpoint) {
	It("passes ping and TCP from the port to the container and back", func() {
		for _, pair := range [][2]*matrix.Endpoint{{port, ctr}, {ctr, port}} {
			from, to := *pair[0], *pair[1]
			By(fmt.Sprintf("pinging %s (%s) from %s", to.Name, to.IP, from.Name))
			expectPing(from, to)

			target := net.JoinHostPort(to.IP.String(), fmt.Sprint(matrix.EchoTCPPort))
			By(fmt.Sprintf("connecting to %s's echo at %s from %s", to.Name, target, from.Name))
			res, err := remote.Connect(context.Background(), from.Agent,
				probes.ConnectConfig{Target: target})
			Expect(err).NotTo(HaveOccurred())
			Expect(res.OK).To(BeTrue(), "%s -> %s tcp: %s (%s)\n%s", from.Name, target,
				res.Error, res.Kind, labctl.ForwardReport(lab.Plan))
		}
	})

	It("counts its pings on the lab's DOCKER-USER accept while FORWARD drops", func() {
		By("reading the FORWARD policy")
		report := labctl.ForwardReport(lab.Plan)
		if !strings.Contains(report, "FORWARD policy: DROP") {
			Skip("FORWARD accepts on this host, so the lab's accept is not needed (B01 " +
				"does not apply)\n" + report)
		}
		before, found := labctl.DockerUserAccepts(lab.Plan)
		Expect(found).To(BeTrue(), "no lab accept in DOCKER-USER\n%s", report)

		By(fmt.Sprintf("pinging %s from %s 5 times", ctr.Name, port.Name))
		res, err := remote.Ping(context.Background(), port.Agent, ctr.IP.String(), 5)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Received).To(Equal(5), "%s -> %s\n%s", port.Name, ctr.Name,
			labctl.ForwardReport(lab.Plan))

		By("finding the accept rule's counter risen by the requests and the replies")
		after, _ := labctl.DockerUserAccepts(lab.Plan)
		Expect(after-before).To(BeNumerically(">=", 10),
			"counter went from %d to %d\n%s", before, after, labctl.ForwardReport(lab.Plan))
	})
}

func expectPing(from, to matrix.Endpoint) {
	res, err := remote.Ping(context.Background(), from.Agent, to.IP.String(), 3)
	Expect(err).NotTo(HaveOccurred())
	if res.Received == 0 {
		Fail(fmt.Sprintf("%s -> %s (%s): %d of %d echo replies\n%s%s", from.Name, to.Name,
			to.IP, res.Received, res.Transmitted, neighbour(from, to),
			labctl.ForwardReport(lab.Plan)))
	}
}

// neighbour shows from's neighbour entry for to: a resolved entry with a failed ping means
// the firewall, not L2, drops the traffic (fault B02).
func neighbour(from, to matrix.Endpoint) string {
	out, err := from.Agent.Exec(context.Background(), "ip", "neigh", "show", to.IP.String())
	if err != nil {
		return fmt.Sprintf("%s: ip neigh: %v\n", from.Name, err)
	}
	return fmt.Sprintf("%s neighbour entry for %s: %s\n", from.Name, to.IP,
		strings.TrimSpace(string(out)))
}

func labNIC(doms []libvirt.Domain, n topology.Node) string {
	for _, d := range doms {
		if d.Name != n.Object {
			continue
		}
		for _, nic := range d.Interfaces {
			if strings.EqualFold(nic.MAC, n.MAC) {
				return nic.Bridge
			}
		}
	}
	return ""
}

func leaseOf(leases []dnsmasq.Lease, mac string) netip.Addr {
	for _, l := range leases {
		if strings.EqualFold(l.MAC, mac) {
			return l.IP
		}
	}
	return netip.Addr{}
}

func sharedLeases(leases []dnsmasq.Lease) []string {
	macs := map[netip.Addr][]string{}
	for _, l := range leases {
		macs[l.IP] = append(macs[l.IP], l.MAC)
	}
	var out []string
	for ip, ms := range macs {
		if len(ms) > 1 {
			out = append(out, fmt.Sprintf("%s leased to %s", ip, strings.Join(ms, ", ")))
		}
	}
	return out
}

// guestAddr is the IPv4 address the guest holds on the NIC with n's MAC (`ip -4 -o addr`
// and /sys/class/net/IF/address inside the VM).
func guestAddr(n topology.Node) netip.Addr {
	out, err := lab.Exec(n, "sh", "-c", `for i in /sys/class/net/*; do `+
		`echo "$(basename $i) $(cat $i/address)"; done; ip -4 -o addr show`)
	Expect(err).NotTo(HaveOccurred())
	ifOfMAC := ""
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 2 && strings.EqualFold(f[1], n.MAC) {
			ifOfMAC = f[0]
		}
	}
	Expect(ifOfMAC).NotTo(BeEmpty(), "%s has no NIC with MAC %s:\n%s", n.Name, n.MAC, out)
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == ifOfMAC && f[2] == "inet" {
			if p, err := netip.ParsePrefix(f[3]); err == nil {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}
