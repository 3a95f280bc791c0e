package topology

import (
	"fmt"
	"net/netip"
	"sort"
)

// Defaults for fields a lab leaves empty.
const (
	DefaultName       = "hybrid"
	DefaultDomain     = "lab"
	DefaultMTU        = 1500
	DefaultMgmtSubnet = "10.0.9.0/24"
	DefaultImage      = "hybridlab/agent:latest"
	DefaultVMMemory   = 512
	DefaultVMCPUs     = 1
)

// LabelPrefix starts every label and tag the lab puts on host objects.
const LabelPrefix = "io.hybridlab"

// Labels put on every Docker object the lab creates.
const (
	LabelLab  = LabelPrefix + ".lab"
	LabelNode = LabelPrefix + ".node"
	LabelRole = LabelPrefix + ".role"
)

// Plan is the single source of truth for a lab's addresses and names: the
// provisioner, the Vagrantfiles, dnsmasq, the guard and the suites all read
// it, and nothing else allocates. The same Lab always yields the same Plan.
type Plan struct {
	Lab     string       `json:"lab"`
	Domain  string       `json:"domain"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	MTU     int          `json:"mtu"`

	Bridge     BridgePlan        `json:"bridge"`
	DHCP       AddrRange         `json:"dhcp"`
	Docker     DockerPlan        `json:"docker"`
	Management ManagementPlan    `json:"management"`
	Nodes      []Node            `json:"nodes"`
	Reserved   []Reservation     `json:"reserved"`
	Interfaces []Interface       `json:"interfaces"`
	Labels     map[string]string `json:"labels"`
	NFTable    string            `json:"nft_table"`
	// Policies are the lab's network policies as declared; nil allows all.
	Policies *Policies `json:"policies,omitempty"`
	// Segments lists every segment, main first. Subnet, Gateway, Bridge,
	// DHCP and Docker above are the main segment's.
	Segments []SegmentPlan `json:"segments"`
}

// SegmentPlan is one bridge and subnet of the lab.
type SegmentPlan struct {
	Name    string       `json:"name"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	Bridge  BridgePlan   `json:"bridge"`
	DHCP    AddrRange    `json:"dhcp"`
	Docker  DockerPlan   `json:"docker"`
}

// BridgePlan is the shared Linux bridge.
type BridgePlan struct {
	Name string `json:"name"`
	// MAC is fixed so the bridge does not take a port's MAC as ports come
	// and go (a bridge with no explicit address copies the lowest one).
	MAC     string       `json:"mac"`
	Address netip.Prefix `json:"address"`
	MTU     int          `json:"mtu"`
}

// AddrRange is an inclusive range of addresses.
type AddrRange struct {
	First netip.Addr `json:"first"`
	Last  netip.Addr `json:"last"`
}

// Contains reports whether a lies in r.
func (r AddrRange) Contains(a netip.Addr) bool {
	return r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Size is the number of addresses in r.
func (r AddrRange) Size() int {
	return int(addrDiff(r.Last, r.First)) + 1
}

func (r AddrRange) String() string { return r.First.String() + "-" + r.Last.String() }

// DockerPlan is the Docker network bound to the lab bridge.
type DockerPlan struct {
	Network string       `json:"network"`
	IPRange netip.Prefix `json:"ip_range"`
	// AuxAddresses keeps Docker's IPAM off every address the lab hands to
	// something other than a container (VMs, reservations).
	AuxAddresses map[string]netip.Addr `json:"aux_addresses"`
}

// ManagementPlan is the isolated libvirt network for Vagrant's SSH.
type ManagementPlan struct {
	Network string       `json:"network"`
	Bridge  string       `json:"bridge"`
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	DHCP    AddrRange    `json:"dhcp"`
}

// Node is one VM or container with its place in the plan.
type Node struct {
	Name string     `json:"name"`
	Kind string     `json:"kind"`
	Role string     `json:"role"`
	IP   netip.Addr `json:"ip"`
	MAC  string     `json:"mac"`
	// DNS is the node's fully qualified name in the lab domain.
	DNS string `json:"dns"`
	// Object is the name of the host object that runs the node: the
	// container name or the libvirt domain name.
	Object  string   `json:"object"`
	Image   string   `json:"image,omitempty"`
	Memory  int      `json:"memory,omitempty"`
	CPUs    int      `json:"cpus,omitempty"`
	Command []string `json:"command,omitempty"`
	Publish []string `json:"publish,omitempty"`
	// Segment names the segment the node is on.
	Segment string `json:"segment"`
}

// Reservation is one line of the address ledger.
type Reservation struct {
	IP    netip.Addr `json:"ip"`
	Owner string     `json:"owner"`
	Note  string     `json:"note,omitempty"`
}

// Interface is a host interface name the lab creates.
type Interface struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
}

// VMs returns the plan's VM nodes in plan order.
func (p *Plan) VMs() []Node { return p.nodesOf(KindVM) }

// Containers returns the plan's container nodes in plan order.
func (p *Plan) Containers() []Node { return p.nodesOf(KindContainer) }

// Node returns the node with the given name.
func (p *Plan) Node(name string) (Node, bool) {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

func (p *Plan) nodesOf(kind string) []Node {
	var out []Node
	for _, n := range p.Nodes {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// Ledger lists every address the plan assigns, with its owner, in address
// order. No address appears twice.
func (p *Plan) Ledger() []Reservation {
	out := append([]Reservation(nil), p.Reserved...)
	for _, n := range p.Nodes {
		out = append(out, Reservation{IP: n.IP, Owner: n.Kind + "/" + n.Name, Note: n.MAC})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// mgmtFirstHost is the offset of the management network's first DHCP
// address; the addresses below it stay free for the host side.
const mgmtFirstHost = 10

// NewPlan validates lab and computes its plan. The error wraps ErrInvalid
// and lists every problem found, one per line, each naming the object and
// the fix (see Problems).
//
// The plan is deterministic. Pinned addresses are taken first; the other
// VMs then get the free addresses of dhcp_range from the bottom up and the
// other containers those of docker_range from the top down, in list order.
// So appending a node never moves an existing one, reordering nodes
// exchanges the addresses of exactly the unpinned nodes that changed
// places, and removing a node moves the unpinned nodes of its kind listed
// after it. Pin an ip to keep a node's address fixed whatever the order.
func NewPlan(lab *Lab) (*Plan, error) {
	l := lab.WithDefaults()
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return build(l)
}

func build(l *Lab) (*Plan, error) {
	labs := l.segmentLabs()
	p, err := buildSegment(labs[0])
	if err != nil {
		return nil, err
	}
	p.Policies = l.Policies
	p.Segments = []SegmentPlan{p.segmentPlan(MainSegment)}
	for _, sl := range labs[1:] {
		sp, err := buildSegment(sl)
		if err != nil {
			return nil, err
		}
		p.Segments = append(p.Segments, sp.segmentPlan(sl.segment))
		p.Nodes = append(p.Nodes, sp.Nodes...)
		p.Reserved = append(p.Reserved, sp.Reserved...)
		p.Interfaces = append(p.Interfaces, sp.Interfaces[0])
	}
	if err := p.checkMACs(); err != nil {
		return nil, err
	}
	return p, nil
}

func buildSegment(l *Lab) (*Plan, error) {
	subnet := netip.MustParsePrefix(l.Subnet)
	gw := netip.MustParseAddr(l.Gateway)
	dhcp, _ := parseRange(l.DHCPRange)
	dockerRange := netip.MustParsePrefix(l.DockerRange)
	mgmt := netip.MustParsePrefix(l.Management.Subnet).Masked()

	p := &Plan{
		Lab:     l.Name,
		Domain:  l.Domain,
		Subnet:  subnet,
		Gateway: gw,
		MTU:     l.MTU,
		Bridge: BridgePlan{
			Name:    l.Bridge,
			MAC:     deriveMAC(macBridge, gw),
			Address: netip.PrefixFrom(gw, subnet.Bits()),
			MTU:     l.MTU,
		},
		DHCP: dhcp,
		Docker: DockerPlan{
			Network:      dockerNetworkName(l),
			IPRange:      dockerRange,
			AuxAddresses: map[string]netip.Addr{},
		},
		Management: ManagementPlan{
			Network: l.Name + "-mgmt",
			Bridge:  l.Management.Bridge,
			Subnet:  mgmt,
			Gateway: mgmt.Addr().Next(),
			DHCP: AddrRange{
				First: offset(mgmt.Addr(), mgmtFirstHost),
				Last:  lastHost(mgmt),
			},
		},
		Labels:  map[string]string{LabelLab: l.Name},
		NFTable: "hybridlab_" + l.Name,
	}
	p.Reserved = []Reservation{
		{IP: subnet.Addr(), Owner: "network", Note: "network address"},
		{IP: gw, Owner: "gateway", Note: "bridge " + l.Bridge + ", DNS and DHCP"},
		{IP: broadcast(subnet), Owner: "broadcast"},
	}
	for _, r := range l.Reserved {
		ip := netip.MustParseAddr(r.IP)
		p.Reserved = append(p.Reserved, Reservation{IP: ip, Owner: "reserved", Note: r.Note})
	}

	used := map[netip.Addr]string{}
	for _, r := range p.Reserved {
		used[r.IP] = r.Owner
	}
	// Pinned addresses are taken before any automatic placement, so a node
	// listed earlier can never be given a later node's pinned address.
	for _, vm := range l.VMs {
		if vm.IP != "" {
			used[netip.MustParseAddr(vm.IP)] = "vm/" + vm.Name
		}
	}
	for _, c := range l.Containers {
		if c.IP != "" {
			used[netip.MustParseAddr(c.IP)] = "container/" + c.Name
		}
	}
	if err := p.placeVMs(l, used); err != nil {
		return nil, err
	}
	if err := p.placeContainers(l, used); err != nil {
		return nil, err
	}
	p.fillAux(l)
	p.Interfaces = []Interface{
		{Name: p.Bridge.Name, Owner: bridgeOwner(l.segment)},
		{Name: p.Management.Bridge, Owner: "libvirt network " + p.Management.Network},
	}
	return p, nil
}

func (p *Plan) placeVMs(l *Lab, used map[netip.Addr]string) error {
	next := p.DHCP.First
	for _, vm := range l.VMs {
		ip, err := pick(vm.IP, &next, p.DHCP.Last, used)
		if err != nil {
			return fmt.Errorf("%w: vm %q: %v; widen dhcp_range", ErrInvalid, vm.Name, err)
		}
		used[ip] = "vm/" + vm.Name
		p.Nodes = append(p.Nodes, Node{
			Name:    vm.Name,
			Kind:    KindVM,
			Role:    vm.Role,
			IP:      ip,
			MAC:     orDerived(vm.MAC, macVM, ip),
			DNS:     vm.Name + "." + l.Domain,
			Object:  l.Name + "-" + vm.Name,
			Segment: l.segment,
			Memory:  vm.Memory,
			CPUs:    vm.CPUs,
		})
	}
	return nil
}

// placeContainers pins declared containers from the top of the Docker range
// downwards. Docker's IPAM hands out dynamic addresses from the bottom, so a
// container started by hand does not take a declared container's address
// while that one is stopped.
func (p *Plan) placeContainers(l *Lab, used map[netip.Addr]string) error {
	// The range's own last address is a host address unless it is the
	// subnet's broadcast address, which is in used already.
	top := broadcast(p.Docker.IPRange)
	for _, c := range l.Containers {
		ip, err := pickDown(c.IP, &top, p.Docker.IPRange.Addr(), used)
		if err != nil {
			return fmt.Errorf("%w: container %q: %v; widen docker_range", ErrInvalid, c.Name, err)
		}
		used[ip] = "container/" + c.Name
		p.Nodes = append(p.Nodes, Node{
			Name:    c.Name,
			Kind:    KindContainer,
			Role:    RoleContainer,
			IP:      ip,
			MAC:     orDerived(c.MAC, macContainer, ip),
			DNS:     c.Name + "." + l.Domain,
			Object:  l.Name + "-" + c.Name,
			Segment: l.segment,
			Image:   c.Image,
			Command: c.Command,
			Publish: c.Publish,
		})
	}
	return nil
}

// MaxAuxBlock is the largest VM DHCP block handed to Docker whole.
const MaxAuxBlock = 256

// fillAux gives Docker every address in the subnet that belongs to a VM or
// a reservation, so `docker run --ip` can never take one of them either.
// A VM block of up to MaxAuxBlock addresses is given whole: the Docker
// network then stays the same when a VM is added to a running lab (Docker
// cannot change a network's aux-addresses in place).
func (p *Plan) fillAux(l *Lab) {
	if p.DHCP.Size() <= MaxAuxBlock {
		for a, i := p.DHCP.First, 0; a.Compare(p.DHCP.Last) <= 0; a, i = a.Next(), i+1 {
			p.Docker.AuxAddresses[fmt.Sprintf("vm-%d", i)] = a
		}
	} else {
		for _, n := range p.VMs() {
			p.Docker.AuxAddresses["vm-"+n.Name] = n.IP
		}
	}
	for i, r := range l.Reserved {
		p.Docker.AuxAddresses[fmt.Sprintf("reserved-%d", i+1)] = netip.MustParseAddr(r.IP)
	}
}

// pick returns want when set, else the next free address from *next up to
// last, advancing *next.
func pick(want string, next *netip.Addr, last netip.Addr,
	used map[netip.Addr]string) (netip.Addr, error) {
	if want != "" {
		return netip.MustParseAddr(want), nil
	}
	for ; next.Compare(last) <= 0; *next = next.Next() {
		if _, taken := used[*next]; !taken {
			ip := *next
			*next = next.Next()
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left")
}

// pickDown is pick working downwards from *top to first.
func pickDown(want string, top *netip.Addr, first netip.Addr,
	used map[netip.Addr]string) (netip.Addr, error) {
	if want != "" {
		return netip.MustParseAddr(want), nil
	}
	for ; top.Compare(first) >= 0; *top = top.Prev() {
		if _, taken := used[*top]; !taken {
			ip := *top
			*top = top.Prev()
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address left")
}

func orDerived(mac string, prefix [2]byte, ip netip.Addr) string {
	if mac != "" {
		return normalizeMAC(mac)
	}
	return deriveMAC(prefix, ip)
}

// checkMACs catches a MAC given in the lab that equals one derived for
// another node.
func (p *Plan) checkMACs() error {
	seen := map[string]string{p.Bridge.MAC: fmt.Sprintf("bridge %q", p.Bridge.Name)}
	for _, n := range p.Nodes {
		if prev, dup := seen[n.MAC]; dup {
			return fmt.Errorf("%w: %s %q: mac %s is already used by %s; pick another mac",
				ErrInvalid, n.Kind, n.Name, n.MAC, prev)
		}
		seen[n.MAC] = fmt.Sprintf("%s %q", n.Kind, n.Name)
	}
	return nil
}
