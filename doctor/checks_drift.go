package doctor

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"hybridlab/topology"
)

// checkLeaseDrift reconciles the lab dnsmasq's leases with the plan: a VM
// holding another address than planned, a lease for a MAC the plan does
// not know, one address leased to two MACs, and one client-id sent by two
// MACs (VMs cloned with the same machine-id).
func checkLeaseDrift(plan *topology.Plan, s *HostState) []Finding {
	var out []Finding
	byMAC := map[string]topology.Node{}
	byIP := map[netip.Addr]topology.Node{}
	for _, n := range plan.Nodes {
		byMAC[strings.ToLower(n.MAC)] = n
		byIP[n.IP] = n
	}
	macsOfIP := map[netip.Addr][]string{}
	macsOfCID := map[string][]string{}
	for _, l := range s.Leases {
		if !inLabSubnets(plan, l.IP) {
			continue
		}
		mac := strings.ToLower(l.MAC)
		macsOfIP[l.IP] = appendNew(macsOfIP[l.IP], mac)
		if l.ClientID != "" && l.ClientID != "*" {
			macsOfCID[l.ClientID] = appendNew(macsOfCID[l.ClientID], mac)
		}
		if f, drift := leaseDrift(plan, s, l, byMAC, byIP); drift {
			out = append(out, f)
		}
	}
	out = append(out, sharedFindings(s, macsOfIP, macsOfCID)...)
	return out
}

func appendNew(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// leaseDrift judges one lease: a planned MAC with another address, or a
// MAC the plan does not know (an error when it holds a node's address).
func leaseDrift(plan *topology.Plan, s *HostState, l Lease, byMAC map[string]topology.Node,
	byIP map[netip.Addr]topology.Node) (Finding, bool) {
	mac := strings.ToLower(l.MAC)
	f := Finding{
		ID: IDLeaseDrift, Severity: Error,
		Fix: fmt.Sprintf("delete the line for %s from %s, run `go run ./setup up` "+
			"(restarts dnsmasq with the plan's reservations), then renew DHCP in the guest",
			mac, s.LeaseFile),
	}
	if n, known := byMAC[mac]; known {
		if n.IP == l.IP {
			return Finding{}, false
		}
		f.Object = fmt.Sprintf("%s %s", n.Name, mac)
		f.Evidence = fmt.Sprintf("name %s, MAC %s, expected IP %s, seen IP %s (lease file %s)",
			n.Name, mac, n.IP, l.IP, s.LeaseFile)
		f.Cost = n.Name + ".lab resolves to " + n.IP.String() + ", which " + n.Name +
			" does not hold: peers get \"Destination Host Unreachable\""
		return f, true
	}
	f.Object = "MAC " + mac
	f.Evidence = fmt.Sprintf("name %s, MAC %s (not in the plan), expected IP none, seen IP %s "+
		"(lease file %s)", orStar(l.Hostname), mac, l.IP, s.LeaseFile)
	f.Cost = "an unplanned machine holds a lab address; dnsmasq may hand it to a node later"
	f.Severity = Warn
	if owner, ok := byIP[l.IP]; ok {
		f.Severity = Error
		f.Evidence += fmt.Sprintf("; %s is %s's address (MAC %s)", l.IP, owner.Name, owner.MAC)
		f.Cost = "two machines answer for " + owner.Name + "'s address"
	}
	return f, true
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

func sharedFindings(s *HostState, macsOfIP map[netip.Addr][]string,
	macsOfCID map[string][]string) []Finding {
	var out []Finding
	var ips []netip.Addr
	for ip := range macsOfIP {
		ips = append(ips, ip)
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	for _, ip := range ips {
		if macs := macsOfIP[ip]; len(macs) > 1 {
			out = append(out, Finding{
				ID: IDLeaseDrift, Severity: Error, Object: "IP " + ip.String(),
				Evidence: fmt.Sprintf("leased to %d MACs: %s (lease file %s)", len(macs),
					strings.Join(macs, ", "), s.LeaseFile),
				Cost: "duplicate address: traffic to " + ip.String() + " reaches either machine",
				Fix:  "stop all but one of " + strings.Join(macs, ", ") + ", then `go run ./setup up`",
			})
		}
	}
	var cids []string
	for cid := range macsOfCID {
		cids = append(cids, cid)
	}
	sort.Strings(cids)
	for _, cid := range cids {
		if macs := macsOfCID[cid]; len(macs) > 1 {
			out = append(out, Finding{
				ID: IDLeaseDrift, Severity: Error, Object: "client-id " + cid,
				Evidence: "sent by MACs " + strings.Join(macs, ", ") +
					" (guests cloned with one /etc/machine-id)",
				Cost: "dnsmasq treats the guests as one client and hands them one address",
				Fix: "give each guest its own machine-id: `sudo rm /etc/machine-id && " +
					"sudo systemd-machine-id-setup` in each, and keep /etc/machine-id empty in the box",
			})
		}
	}
	return out
}

// checkEndpointDrift compares each running container of the plan with its
// Docker endpoint on its segment's network: address, MAC, and the bridge its
// host-side veth hangs off. It also checks each segment's Docker network is
// bound to that segment's bridge.
func checkEndpointDrift(plan *topology.Plan, s *HostState) []Finding {
	return perSegment(plan, func(v *topology.Plan) []Finding { return endpointDriftOn(v, s) })
}

func endpointDriftOn(plan *topology.Plan, s *HostState) []Finding {
	var out []Finding
	for _, n := range s.Docker.Networks {
		if n.Name == plan.Docker.Network && n.Bridge != plan.Bridge.Name {
			out = append(out, Finding{
				ID: IDEndpointDrift, Severity: Error, Object: "Docker network " + n.Name,
				Evidence: fmt.Sprintf("bound to bridge %s, plan bridge %s", n.Bridge,
					plan.Bridge.Name),
				Cost: "containers sit on another bridge than the VMs and cannot reach them",
				Fix:  "docker network rm " + n.Name + " && go run ./setup up",
			})
		}
	}
	for _, node := range plan.Containers() {
		c, ok := containerNamed(s, node.Object)
		if !ok || c.State != "running" {
			continue
		}
		out = append(out, endpointFindings(plan, node, c)...)
	}
	return out
}

func containerNamed(s *HostState, name string) (DockerContainer, bool) {
	for _, c := range s.Docker.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return DockerContainer{}, false
}

func endpointFindings(plan *topology.Plan, node topology.Node, c DockerContainer) []Finding {
	recreate := fmt.Sprintf("docker rm -f %s && go run ./setup up", c.Name)
	f := Finding{ID: IDEndpointDrift, Severity: Error, Object: "container " + c.Name}
	var ep *Endpoint
	for i := range c.Endpoints {
		if c.Endpoints[i].Network == plan.Docker.Network {
			ep = &c.Endpoints[i]
		}
	}
	if ep == nil {
		f.Evidence = "not attached to Docker network " + plan.Docker.Network
		f.Cost = node.Name + " is not on the lab bridge"
		f.Fix = fmt.Sprintf("docker network connect --ip %s %s %s", node.IP,
			plan.Docker.Network, c.Name)
		return []Finding{f}
	}
	var diffs []string
	if ep.IP != node.IP {
		diffs = append(diffs, fmt.Sprintf("IP %s, plan %s", ep.IP, node.IP))
	}
	if !strings.EqualFold(ep.MAC, node.MAC) {
		diffs = append(diffs, fmt.Sprintf("MAC %s, plan %s", ep.MAC, node.MAC))
	}
	var out []Finding
	if len(diffs) > 0 {
		f.Evidence = fmt.Sprintf("node %s: %s", node.Name, strings.Join(diffs, "; "))
		f.Cost = "DNS and the reservations point at the planned address, so peers miss " + node.Name
		f.Fix = recreate
		out = append(out, f)
	}
	if ep.HostVeth != "" && ep.HostMaster != plan.Bridge.Name {
		g := f
		master := ep.HostMaster
		if master == "" {
			master = "no bridge"
		}
		g.Evidence = fmt.Sprintf("host veth %s hangs off %s, not %s", ep.HostVeth, master,
			plan.Bridge.Name)
		g.Cost = node.Name + " cannot reach the VMs on " + plan.Bridge.Name
		g.Fix = fmt.Sprintf("ip link set %s master %s", ep.HostVeth, plan.Bridge.Name)
		out = append(out, g)
	}
	return out
}
