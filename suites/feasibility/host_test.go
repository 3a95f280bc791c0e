package feasibility_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/network"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"hybridlab/provision"
	"hybridlab/provision/accel"
	"hybridlab/provision/bridge"
	"hybridlab/provision/containers"
	"hybridlab/provision/libvirt"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

var _ = Describe("the host under the lab", labels.Feasibility, labels.Root, labels.Docker,
	Serial, Ordered, ContinueOnFailure, func() {
		BeforeAll(func() { lab.Up(false) })

		It("records the FORWARD policy and the br_netfilter state", func() {
			By("reading the policy, the bridge-nf-call switches and DOCKER-USER")
			report := labctl.ForwardReport(lab.Plan)
			GinkgoWriter.Print(report)
			AddReportEntry("bridged-traffic firewall state", report)
			Expect(report).To(MatchRegexp(`FORWARD policy: (ACCEPT|DROP)\n`))
			Expect(report).To(MatchRegexp(`bridge-nf-call-iptables = [01]\n`))

			By("finding the lab's accept in DOCKER-USER when FORWARD drops")
			if strings.Contains(report, "FORWARD policy: DROP") {
				_, found := labctl.DockerUserAccepts(lab.Plan)
				Expect(found).To(BeTrue(), "FORWARD drops and DOCKER-USER has no accept for "+
					"%s (fault B01)\n%s", lab.Plan.Bridge.Name, report)
			}
		})

		It("uses the nftables backend of iptables", func() {
			out, err := labctl.Run("iptables", "-V")
			Expect(err).NotTo(HaveOccurred())
			Expect(out).To(ContainSubstring("(nf_tables)"),
				"iptables is the legacy backend; Docker and the guard would use different tables")
			legacy, _ := os.ReadFile("/proc/net/ip_tables_names")
			AddReportEntry("iptables", fmt.Sprintf("%s; legacy tables loaded: %q",
				strings.TrimSpace(out), strings.Fields(string(legacy))))
		})

		It("finds no network of anything else overlapping the lab's subnets", func() {
			By("reading routes, addresses, Docker and libvirt networks")
			inv := inventory()
			conflicts := topology.HostConflicts(lab.Plan, inv)
			Expect(conflicts).To(BeEmpty(), "the lab's subnets clash with this host")
		})

		It("hangs every container's veth off its segment's bridge", func() {
			list, err := containers.List(context.Background(), lab.Docker, lab.Plan.Lab)
			Expect(err).NotTo(HaveOccurred())
			Expect(list).NotTo(BeEmpty())
			for _, c := range list {
				n, planned := lab.Plan.Node(c.Node)
				if !planned {
					continue // a container started by hand or by another spec
				}
				want := lab.Plan.SegmentOf(n).Bridge.Name
				By(fmt.Sprintf("finding %s's veth %s on %s", c.Name, c.Veth, want))
				Expect(c.Master).To(Equal(want),
					"container %s: veth %q hangs off %q (fault B10)", c.Name, c.Veth, c.Master)
			}
		})

		It("keeps STP off and every port of every lab bridge forwarding", func() {
			for _, name := range lab.Plan.Bridges() {
				st, err := bridge.Inspect(name)
				Expect(err).NotTo(HaveOccurred())
				Expect(st.STP).To(BeFalse(), "%s has STP on (fault B18): every new port waits "+
					"2 x forward_delay (%s) before it forwards; `setup up` turns STP off",
					st.Name, st.ForwardDelay)
				Expect(st.Ports).NotTo(BeEmpty(), "bridge %s has no port", name)
				for _, p := range st.Ports {
					Expect(p.State).To(Equal(bridge.PortForwarding), "port %s (%s) of %s is %s",
						p.Name, p.Owner, st.Name, p.State)
				}
			}
		})

		It("leaves the bridge unchanged when a container comes and goes on it", func() {
			before, err := labctl.BridgeSnapshot(lab.Plan)
			Expect(err).NotTo(HaveOccurred())
			name := fmt.Sprintf("%s-snap%d", lab.Plan.Lab, GinkgoRandomSeed()%100000)

			By(fmt.Sprintf("creating throwaway container %s on %s", name, lab.Plan.Docker.Network))
			_, err = labctl.Run("docker", "run", "-d", "--name", name, "--network",
				lab.Plan.Docker.Network, "--label", topology.LabelLab+"="+lab.Plan.Lab,
				topology.DefaultImage, "/usr/local/bin/probe", "serve")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { _, _ = labctl.Run("docker", "rm", "-f", name) })

			By("waiting for its bridge port to forward (STP off: no listening/learning delay)")
			start := time.Now()
			Expect(bridge.WaitPortsForwarding(lab.Plan.Bridge.Name, labctl.PortForwarding)).
				To(Succeed(), "a new port of %s does not forward at once (fault B18)",
					lab.Plan.Bridge.Name)
			AddReportEntry("bridge port forwarding after docker run returned", time.Since(start))
			expectBridgeAsBefore(before, "container create")

			By(fmt.Sprintf("removing %s", name))
			_, err = labctl.Run("docker", "rm", "-f", name)
			Expect(err).NotTo(HaveOccurred())
			expectBridgeAsBefore(before, "container remove")
		})
	})

var _ = Describe("the accelerator decision", labels.Feasibility, labels.Root, labels.Docker,
	labels.Libvirt, labels.VM, labels.Slow, Serial, Ordered, func() {
		BeforeAll(func() { lab.Up(true) })

		It("is recorded with its reason, and TCG is reported", func() {
			data, err := os.ReadFile(accel.DefaultCachePath)
			Expect(err).NotTo(HaveOccurred(), "up with VMs writes the boot probe's answer")
			var d accel.Decision
			Expect(json.Unmarshal(data, &d)).To(Succeed())
			Expect(d.Accel).To(BeElementOf(accel.Accel("kvm"), accel.Accel("tcg")))
			Expect(d.Reason).NotTo(BeEmpty(), "decision %q carries no reason", d.Accel)
			AddReportEntry("accelerator", fmt.Sprintf("%s: %s (decided %s)", d.Accel, d.Reason,
				d.At.Format("2006-01-02 15:04 MST")))
			if d.Accel == "tcg" {
				GinkgoWriter.Printf("VMs run under QEMU TCG (no usable KVM): %s\n", d.Reason)
			}
		})
	})

func expectBridgeAsBefore(before bridge.Snapshot, after string) {
	By(fmt.Sprintf("comparing the bridge with its snapshot after %s", after))
	now, err := labctl.BridgeSnapshot(lab.Plan)
	Expect(err).NotTo(HaveOccurred())
	Expect(before.Diff(now)).To(BeEmpty(), "Docker changed %s on %s (fault B11)",
		lab.Plan.Bridge.Name, after)
}

// inventory reads every prefix in use on the host: kernel routes and addresses, Docker
// networks and, when libvirtd answers, libvirt networks.
func inventory() topology.Inventory {
	ctx := context.Background()
	inv, err := topology.ReadInventory(ctx)
	Expect(err).NotTo(HaveOccurred())
	nets, err := lab.Docker.NetworkList(ctx, network.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				inv.DockerNetworks = append(inv.DockerNetworks,
					topology.NamedPrefix{Name: n.Name, Prefix: p})
			}
		}
	}
	if virt, err := libvirt.Dial(provision.LibvirtSocket); err == nil {
		defer virt.Close()
		inv.LibvirtNetworks, err = virt.NetworkPrefixes()
		Expect(err).NotTo(HaveOccurred())
	}
	return inv
}
