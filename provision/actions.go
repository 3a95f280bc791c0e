package provision

import (
	"fmt"
	"strings"

	"hybridlab/topology"
)

// Action is one host change that Up makes, with the shell command a person
// would type to make the same change by hand.
type Action struct {
	Step    string `json:"step"`
	Object  string `json:"object"`
	Command string `json:"command"`
}

// Describe lists, in order, every host object Up builds for the plan. It
// reads nothing from the host: `up --dry-run` prints it, and the
// troubleshooting guide's commands are the same ones.
func Describe(p *topology.Plan, opts Options) []Action {
	var out []Action
	add := func(step, object, format string, args ...any) {
		out = append(out, Action{Step: step, Object: object, Command: fmt.Sprintf(format, args...)})
	}
	add("guard", "nft table inet "+p.NFTable,
		"nft add table inet %s  # drop %s leaving via any interface but %s%s",
		p.NFTable, joinList(p.Subnets()), strings.Join(p.Bridges(), ", "),
		egressNote(opts.AllowEgress))
	for _, s := range p.AllSegments() {
		br := s.Bridge
		add("bridge", "bridge "+br.Name,
			"ip link add %s address %s mtu %d type bridge stp_state 0 forward_delay 0 && "+
				"ip addr add %s dev %s && ip link set %s alias hybridlab:%s up",
			br.Name, br.MAC, br.MTU, br.Address, br.Name, br.Name, p.Lab)
		add("forward", "iptables DOCKER-USER",
			"iptables -I DOCKER-USER -i %s -o %s -j ACCEPT  # bridged lab traffic vs FORWARD DROP",
			br.Name, br.Name)
	}
	if p.Routed() {
		for _, a := range p.Bridges() {
			for _, b := range p.Bridges() {
				if a != b {
					add("forward", "iptables DOCKER-USER",
						"iptables -I DOCKER-USER -i %s -o %s -j ACCEPT  # routed between segments",
						a, b)
				}
			}
		}
		add("forward", "sysctl net.ipv4.ip_forward",
			"sysctl -w net.ipv4.ip_forward=1  # the host routes between the segments")
	}
	add("image", "docker image "+topology.DefaultImage,
		"docker build -t %s (FROM scratch: static busybox + probe agent)", topology.DefaultImage)
	for _, s := range p.AllSegments() {
		add("network", "docker network "+s.Docker.Network, "%s",
			dockerNetworkCommand(p.View(s.Name), p.Routed()))
	}
	for _, n := range p.Containers() {
		add("container", "container "+n.Object, "%s", dockerRunCommand(p, n))
	}
	var gws, blocks []string
	for _, s := range p.AllSegments() {
		gws = append(gws, s.Gateway.String())
		blocks = append(blocks, s.DHCP.String())
	}
	add("dns", "dnsmasq on "+strings.Join(gws, ", "),
		"dnsmasq --conf-file=%s/dnsmasq.conf  # DNS for *.%s and DHCP %s, no upstream",
		StateDir(p.Lab), p.Domain, strings.Join(blocks, ", "))
	if !opts.VMs || len(p.VMs()) == 0 {
		return out
	}
	add("box", "vagrant box "+BoxName, "go run ./setup box  # offline Debian 12 box, cached")
	add("mgmt", "libvirt network "+p.Management.Network,
		"virsh net-define (isolated, no forward, no DNS) && virsh net-start %s  # bridge %s, %s",
		p.Management.Network, p.Management.Bridge, p.Management.Subnet)
	for _, n := range p.VMs() {
		add("vm", "vm "+n.Object,
			"vagrant up --provider=libvirt  # in %s/vms/%s, NIC on %s mac %s -> %s",
			StateDir(p.Lab), n.Name, p.SegmentOf(n).Bridge.Name, n.MAC, n.IP)
	}
	return out
}

// joinList writes xs comma-separated: addresses, prefixes.
func joinList[T fmt.Stringer](xs []T) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return strings.Join(out, ", ")
}

func egressNote(allow bool) string {
	if allow {
		return " (disabled: --allow-egress)"
	}
	return ""
}

func dockerNetworkCommand(p *topology.Plan, routed bool) string {
	var aux []string
	for name, ip := range p.Docker.AuxAddresses {
		if !p.DHCP.Contains(ip) || ip == p.DHCP.First {
			aux = append(aux, fmt.Sprintf("--aux-address %s=%s", name, ip))
		}
	}
	sortStrings(aux)
	if n := len(p.Docker.AuxAddresses) - len(aux); n > 0 {
		aux = append(aux, fmt.Sprintf("… (%d more: one per address of the VM block %s)", n, p.DHCP))
	}
	return strings.Join(append([]string{
		"docker network create -d bridge",
		"-o com.docker.network.bridge.name=" + p.Bridge.Name,
		fmt.Sprintf("-o com.docker.network.driver.mtu=%d", p.MTU),
		fmt.Sprintf("-o com.docker.network.bridge.enable_ip_masquerade=%t", !routed),
		"--subnet " + p.Subnet.String(),
		"--gateway " + p.Gateway.String(),
		"--ip-range " + p.Docker.IPRange.String(),
	}, append(aux, "--label "+topology.LabelLab+"="+p.Lab, p.Docker.Network)...), " ")
}

func dockerRunCommand(p *topology.Plan, n topology.Node) string {
	seg := p.SegmentOf(n)
	parts := []string{
		"docker run -d --name " + n.Object,
		"--hostname " + n.Name,
		"--network " + seg.Docker.Network,
		"--ip " + n.IP.String(),
		"--mac-address " + n.MAC,
		"--dns " + seg.Gateway.String(),
		"--dns-search " + p.Domain,
		"--label " + topology.LabelLab + "=" + p.Lab,
	}
	for _, pub := range n.Publish {
		parts = append(parts, "-p "+pub)
	}
	parts = append(parts, n.Image)
	return strings.Join(append(parts, n.Command...), " ")
}
