package doctor

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"hybridlab/provision/libvirt"
	"hybridlab/topology"
)

// checkAccel reports the accelerator decision taken by the caller.
func checkAccel(_ *topology.Plan, s *HostState) []Finding {
	switch s.Accel.Name {
	case "kvm":
		return []Finding{{
			ID: IDAccel, Severity: Info, Object: "accelerator",
			Evidence: "KVM is usable: " + s.Accel.Reason,
		}}
	case "tcg":
		return []Finding{{
			ID: IDAccel, Severity: Warn, Object: "accelerator",
			Evidence: "VMs run under QEMU TCG: " + s.Accel.Reason,
			Cost: "VMs boot in about 40 s and run several times slower; latency figures " +
				"measured through a VM include emulation",
			Fix: "boot VMs one at a time; for KVM, make /dev/kvm usable and check " +
				"`virsh -c qemu:///system domcapabilities --virttype kvm`",
		}}
	}
	return nil
}

// checkDNSPortTaken finds another process on port 53 of a lab gateway (any
// segment's) or of a wildcard address: the lab dnsmasq then cannot bind
// GW:53, or a second server answers the lab's queries.
func checkDNSPortTaken(plan *topology.Plan, s *HostState) []Finding {
	var out []Finding
	seen := map[string]bool{}
	for _, l := range s.Listeners {
		a := l.Local.Addr().Unmap()
		if l.Local.Port() != 53 || (!slices.Contains(plan.Gateways(), a) && !a.IsUnspecified()) {
			continue
		}
		if l.PID != 0 && labPID(plan, s, l.PID) {
			continue
		}
		who := processName(l)
		key := who + l.Proto + l.Local.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, Finding{
			ID:       IDDNSPortTaken,
			Severity: Error,
			Object:   who,
			Evidence: fmt.Sprintf("%s listens on %s %s", who, l.Proto, l.Local),
			Cost: fmt.Sprintf("the lab dnsmasq cannot bind %s, or %s answers the lab's "+
				"queries instead: names of VMs and containers do not resolve",
				gatewayPorts(plan), who),
			Fix: dnsFix(plan, l),
		})
	}
	return out
}

func processName(l Listener) string {
	if l.PID == 0 {
		return "an unknown process"
	}
	return fmt.Sprintf("%s (pid %d)", l.Process, l.PID)
}

func dnsFix(plan *topology.Plan, l Listener) string {
	stop := "find it with `ss -lunp 'sport = 53'` and stop it"
	if l.PID != 0 {
		stop = fmt.Sprintf("stop it: kill %d", l.PID)
	}
	if l.Process == "dnsmasq" {
		var except []string
		for _, br := range plan.Bridges() {
			except = append(except, "--except-interface="+br)
		}
		return fmt.Sprintf("run that dnsmasq with --bind-interfaces %s, or %s",
			strings.Join(except, " "), stop)
	}
	return "make it listen on its own addresses only (not 0.0.0.0 or " +
		strings.Join(strings.Split(gatewayList(plan), ", "), " or ") + "), or " + stop
}

// gatewayPorts names port 53 on every lab gateway: "10.0.1.1:53".
func gatewayPorts(plan *topology.Plan) string {
	var out []string
	for _, g := range plan.Gateways() {
		out = append(out, g.String()+":53")
	}
	return strings.Join(out, ", ")
}

// labPID reports whether pid is named by a live pid file of the lab.
func labPID(plan *topology.Plan, s *HostState, pid int) bool {
	for _, f := range s.PidFiles {
		if f.PID == pid && f.Alive && labOfPath(f.Path) == plan.Lab {
			return true
		}
	}
	return false
}

func labOfPath(path string) string { return filepath.Base(filepath.Dir(path)) }

// checkIPv6Disabled reports a host without IPv6: an error when the lab
// wants IPv6, otherwise a note that the IPv6 suites will be skipped.
func checkIPv6Disabled(_ *topology.Plan, s *HostState) []Finding {
	if !s.IPv6Host.Disabled {
		return nil
	}
	f := Finding{
		ID: IDIPv6Disabled, Severity: Info, Object: "host IPv6",
		Evidence: "IPv6 is disabled: " + s.IPv6Host.Reason,
		Cost:     "IPv6 suites are skipped; Vagrantfiles turn guest IPv6 off",
		Fix:      "sysctl -w net.ipv6.conf.all.disable_ipv6=0",
	}
	if strings.Contains(s.IPv6Host.Reason, "absent") {
		f.Fix = "remove ipv6.disable=1 from the kernel command line and reboot"
	}
	if s.WantIPv6 {
		f.Severity = Error
		f.Cost = "the lab wants IPv6: libvirt networks fail to start with " +
			"\"address family not supported\" and IPv6 suites cannot run"
	}
	return []Finding{f}
}

// leftover is one object of an earlier lab with the command removing it.
type leftover struct {
	lab, what, rm string
}

// checkLeftovers names objects an earlier lab left behind. Before `up`
// every object of this lab is one; while it runs, only objects the plan no
// longer has and stale pid files are. Objects of other labs are reported as
// information.
func checkLeftovers(plan *topology.Plan, s *HostState) []Finding {
	var own, other []leftover
	for _, l := range findLeftovers(plan, s) {
		if l.lab == plan.Lab {
			own = append(own, l)
		} else {
			other = append(other, l)
		}
	}
	var out []Finding
	if len(own) > 0 {
		out = append(out, leftoverFinding(Warn, plan.Lab, own, "go run ./setup down"))
	}
	byLab := map[string][]leftover{}
	var labs []string
	for _, l := range other {
		if _, ok := byLab[l.lab]; !ok {
			labs = append(labs, l.lab)
		}
		byLab[l.lab] = append(byLab[l.lab], l)
	}
	for _, lab := range labs {
		out = append(out, leftoverFinding(Info, lab, byLab[lab], ""))
	}
	return out
}

func leftoverFinding(sev Severity, lab string, ls []leftover, down string) Finding {
	var whats, cmds []string
	for _, l := range ls {
		whats = append(whats, l.what)
		cmds = append(cmds, l.rm)
	}
	f := Finding{
		ID: IDLeftovers, Severity: sev, Object: "lab " + lab,
		Evidence: "left behind: " + strings.Join(whats, ", "),
		Cost:     "`up` adopts or trips over them; addresses and names stay taken",
		Fix:      strings.Join(cmds, "; "),
	}
	if down != "" {
		f.Fix = down + " (or by hand: " + f.Fix + ")"
	}
	if sev == Info {
		f.Evidence = "objects of another lab (running, or left behind): " +
			strings.Join(whats, ", ")
		f.Cost = "none while lab " + lab + " is running; if it is not, they are leftovers"
		f.Fix = "if lab " + lab + " is not running: go run ./setup down -f <its lab file> " +
			"(or by hand: " + f.Fix + ")"
	}
	return f
}

func findLeftovers(plan *topology.Plan, s *HostState) []leftover {
	var out []leftover
	before := s.Phase == PhaseBefore
	for _, l := range s.Links {
		lab := aliasLab(l.Alias)
		if lab == "" && before && (isLabBridge(plan, l.Name) || l.Name == plan.Management.Bridge) {
			lab = plan.Lab
		}
		if lab != "" && (lab != plan.Lab || before) {
			out = append(out, leftover{lab, "link " + l.Name, "ip link del " + l.Name})
		}
	}
	for _, t := range s.NFTTables {
		lab, ok := strings.CutPrefix(t.Name, "hybridlab_")
		// A lab's other tables (its policy table, hybridlab_<lab>_pol)
		// belong to it: lab names are DNS labels and hold no '_'.
		lab, _, _ = strings.Cut(lab, "_")
		if ok && (lab != plan.Lab || before) {
			out = append(out, leftover{lab, "nft table " + t.Family + " " + t.Name,
				"nft delete table " + t.Family + " " + t.Name})
		}
	}
	out = append(out, dockerLeftovers(plan, s, before)...)
	for _, n := range s.Libvirt {
		if before && n.Name == plan.Management.Network {
			out = append(out, leftover{plan.Lab, "libvirt network " + n.Name,
				fmt.Sprintf("virsh -c qemu:///system net-destroy %s; "+
					"virsh -c qemu:///system net-undefine %s", n.Name, n.Name)})
		}
	}
	out = append(out, domainLeftovers(plan, s, before)...)
	for _, f := range s.PidFiles {
		if !f.Alive {
			out = append(out, leftover{labOfPath(f.Path),
				fmt.Sprintf("stale pid file %s (pid %d gone)", f.Path, f.PID), "rm " + f.Path})
		}
	}
	return out
}

func dockerLeftovers(plan *topology.Plan, s *HostState, before bool) []leftover {
	var out []leftover
	var nodes []string
	for _, n := range plan.Nodes {
		nodes = append(nodes, n.Name)
	}
	for _, c := range s.Docker.Containers {
		lab := c.Labels[topology.LabelLab]
		if lab == "" {
			continue
		}
		stray := lab == plan.Lab && !slices.Contains(nodes, c.Labels[topology.LabelNode])
		if lab != plan.Lab || before || stray {
			out = append(out, leftover{lab, "container " + c.Name, "docker rm -f " + c.Name})
		}
	}
	for _, n := range s.Docker.Networks {
		lab := n.Labels[topology.LabelLab]
		if lab == "" && before && isLabNetwork(plan, n.Name) {
			lab = plan.Lab
		}
		if lab != "" && (lab != plan.Lab || before) {
			out = append(out, leftover{lab, "Docker network " + n.Name,
				"docker network rm " + n.Name})
		}
	}
	return out
}

// domainLeftovers names libvirt domains of the lab: before `up` all of
// them, while it runs those the plan no longer has. A domain is the lab's
// when its description carries the lab's mark, or, unmarked, when
// vagrant-libvirt's "Source: …" names a Vagrantfile of the lab's or its name
// is planned. Never by name prefix: lab "lab" must not claim "lab-2-base1".
func domainLeftovers(plan *topology.Plan, s *HostState, before bool) []leftover {
	objects := map[string]bool{}
	for _, n := range plan.VMs() {
		objects[n.Object] = true
	}
	var out []leftover
	for _, d := range s.Domains {
		if !domainOfLab(plan.Lab, d, s.DomainDescs[d], objects) || (!before && objects[d]) {
			continue
		}
		out = append(out, leftover{plan.Lab, "libvirt domain " + d, fmt.Sprintf(
			"virsh -c qemu:///system destroy %s; "+
				"virsh -c qemu:///system undefine %s --remove-all-storage", d, d)})
	}
	return out
}

// aliasLab returns the lab named by an interface alias "hybridlab:LAB[:…]".
func aliasLab(alias string) string {
	rest, ok := strings.CutPrefix(alias, "hybridlab:")
	if !ok {
		return ""
	}
	lab, _, _ := strings.Cut(rest, ":")
	return lab
}

func domainOfLab(lab, name, desc string, planned map[string]bool) bool {
	if owner, ok := libvirt.MarkedLab(desc); ok {
		return owner == lab
	}
	if src, ok := strings.CutPrefix(desc, "Source: "); ok {
		return strings.Contains(src, "/"+lab+"/vagrant/")
	}
	return planned[name]
}
