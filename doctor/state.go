package doctor

import "net/netip"

// HostState is a plain-data snapshot of everything the checks read. Collect
// fills it from the running host; tests load recorded ones from JSON. A
// source that could not be read leaves its fields empty and adds an entry to
// Errors, so a check never mistakes "unknown" for "fine".
type HostState struct {
	IPv4 Firewall `json:"ipv4"`
	IPv6 Firewall `json:"ipv6"`
	// Legacy is iptables-legacy state: tables the kernel holds
	// (/proc/net/ip_tables_names, ip6_tables_names) and their rules.
	Legacy Legacy `json:"legacy"`
	BrNF   BrNF   `json:"br_netfilter"`
	// NFT lists base chains on the input and forward hooks of every
	// nftables table, with their drop rules.
	NFT       []NFTChain `json:"nft,omitempty"`
	NFTTables []NFTTable `json:"nft_tables,omitempty"`

	Links   []Link   `json:"links,omitempty"`
	Bridges []Bridge `json:"bridges,omitempty"`
	Addrs   []Addr   `json:"addrs,omitempty"`
	Routes  []Route  `json:"routes,omitempty"`

	Docker  Docker           `json:"docker"`
	Libvirt []LibvirtNetwork `json:"libvirt,omitempty"`
	// Domains are the names of all libvirt domains (virsh list --all).
	Domains []string `json:"domains,omitempty"`
	// DomainDescs are their descriptions (virsh desc), where they have one:
	// "hybridlab:LAB" on the domains a lab makes.
	DomainDescs map[string]string `json:"domain_descriptions,omitempty"`

	Listeners []Listener `json:"listeners,omitempty"`
	IPv6Host  IPv6Host   `json:"ipv6_host"`
	PidFiles  []PidFile  `json:"pid_files,omitempty"`
	// LeaseFile is the dnsmasq lease file Leases were read from.
	LeaseFile string  `json:"lease_file,omitempty"`
	Leases    []Lease `json:"leases,omitempty"`

	// Inputs copied from Options: facts the caller decided, not read here.
	Accel    Accel   `json:"accel"`
	WantIPv6 bool    `json:"want_ipv6,omitempty"`
	Phase    Phase   `json:"phase,omitempty"`
	Baseline *Bridge `json:"baseline,omitempty"`
	// Baselines are further lab bridges as recorded by `up` (the other
	// segments' bridges of a routed lab).
	Baselines []Bridge `json:"baselines,omitempty"`
	// IPForward is net.ipv4.ip_forward (1 when the host routes); nil when
	// it could not be read.
	IPForward *int `json:"ip_forward,omitempty"`

	// Errors names each source that could not be read.
	Errors []SourceError `json:"errors,omitempty"`
}

// Phase says when the doctor runs: before `up` every object of the lab is a
// leftover; while the lab runs they are expected.
type Phase string

// Phases.
const (
	PhaseBefore  Phase = "before-up"
	PhaseRunning Phase = "running"
)

// Firewall is one address family's iptables view (iptables-nft here).
type Firewall struct {
	// Read is false when the rules could not be listed.
	Read bool `json:"read"`
	// ForwardPolicy is the FORWARD chain's policy: ACCEPT or DROP.
	ForwardPolicy string `json:"forward_policy,omitempty"`
	// DockerUser is true when the DOCKER-USER chain exists.
	DockerUser bool `json:"docker_user,omitempty"`
	// Rules are the `-A` lines of FORWARD and DOCKER-USER, as `iptables -S`
	// prints them.
	Rules []string `json:"rules,omitempty"`
	// NATRead is true when the nat table's POSTROUTING chain was listed.
	NATRead bool `json:"nat_read,omitempty"`
	// NAT are the `-A` lines of the nat table's POSTROUTING chain, as
	// `iptables -t nat -S POSTROUTING` prints them.
	NAT []string `json:"nat,omitempty"`
}

// Legacy describes iptables-legacy state next to nftables.
type Legacy struct {
	Tables4 []string `json:"tables4,omitempty"`
	Tables6 []string `json:"tables6,omitempty"`
	// Rules and Rules6 are `-A` lines and non-ACCEPT policies from
	// iptables-legacy -S and ip6tables-legacy -S, each prefixed "-t TABLE".
	Rules  []string `json:"rules,omitempty"`
	Rules6 []string `json:"rules6,omitempty"`
}

// BrNF is the br_netfilter state of the network namespace. The values are
// -1 when br_netfilter is absent.
type BrNF struct {
	CallIptables  int `json:"call_iptables"`
	CallIP6tables int `json:"call_ip6tables"`
}

// NFTTable is one nftables table.
type NFTTable struct {
	Family string `json:"family"`
	Name   string `json:"name"`
}

// NFTChain is a base chain on the input or forward hook.
type NFTChain struct {
	Family   string `json:"family"`
	Table    string `json:"table"`
	Name     string `json:"name"`
	Hook     string `json:"hook"`
	Priority int32  `json:"priority"`
	Policy   string `json:"policy"`
	// Rules are the chain's accept, drop and reject rules, in order.
	Rules []NFTRule `json:"rules,omitempty"`
}

// NFTRule is a rule with a final verdict.
type NFTRule struct {
	Handle uint64 `json:"handle"`
	// Verdict is "accept" or "drop" (reject counts as drop).
	Verdict string `json:"verdict"`
	// Unconditional is true when the rule matches every packet.
	Unconditional bool `json:"unconditional,omitempty"`
	// OnlyIfnames is true when the rule matches on interface names alone.
	OnlyIfnames bool `json:"only_ifnames,omitempty"`
	// Ifnames and Addrs are interface names and IPv4 addresses the rule
	// compares against.
	Ifnames []string     `json:"ifnames,omitempty"`
	Addrs   []netip.Addr `json:"addrs,omitempty"`
}

// Link is a network interface.
type Link struct {
	Name   string `json:"name"`
	Index  int    `json:"index"`
	Kind   string `json:"kind"`
	MTU    int    `json:"mtu"`
	Master string `json:"master,omitempty"`
	Alias  string `json:"alias,omitempty"`
	MAC    string `json:"mac,omitempty"`
	Up     bool   `json:"up,omitempty"`
}

// Bridge is a Linux bridge and its ports.
type Bridge struct {
	Name string `json:"name"`
	MAC  string `json:"mac"`
	MTU  int    `json:"mtu"`
	// STP is the stp_state: 0 off, 1 kernel STP, 2 user STP.
	STP int `json:"stp"`
	// ForwardDelay is in centiseconds, as `ip -d link` shows it.
	ForwardDelay    int            `json:"forward_delay"`
	NFCallIptables  int            `json:"nf_call_iptables"`
	NFCallIP6tables int            `json:"nf_call_ip6tables,omitempty"`
	Addrs           []netip.Prefix `json:"addrs,omitempty"`
	Ports           []Port         `json:"ports,omitempty"`
}

// Port is a bridge port.
type Port struct {
	Name string `json:"name"`
	MTU  int    `json:"mtu"`
}

// Addr is an address held by an interface.
type Addr struct {
	Link   string       `json:"link"`
	Prefix netip.Prefix `json:"prefix"`
}

// Route is a kernel route (main table).
type Route struct {
	Dst  netip.Prefix `json:"dst"`
	Link string       `json:"link,omitempty"`
}

// Docker is what the Docker daemon reports.
type Docker struct {
	Networks   []DockerNetwork   `json:"networks,omitempty"`
	Containers []DockerContainer `json:"containers,omitempty"`
}

// DockerNetwork is a Docker network with its Linux bridge.
type DockerNetwork struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Driver  string            `json:"driver"`
	Bridge  string            `json:"bridge,omitempty"`
	Subnets []netip.Prefix    `json:"subnets,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// DockerContainer is a container and its endpoints.
type DockerContainer struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	State     string            `json:"state"`
	Labels    map[string]string `json:"labels,omitempty"`
	Endpoints []Endpoint        `json:"endpoints,omitempty"`
}

// Endpoint is a container's attachment to a Docker network. HostVeth and
// HostMaster are the host side of the container's interface with this MAC.
type Endpoint struct {
	Network    string     `json:"network"`
	IP         netip.Addr `json:"ip"`
	MAC        string     `json:"mac"`
	HostVeth   string     `json:"host_veth,omitempty"`
	HostMaster string     `json:"host_master,omitempty"`
}

// LibvirtNetwork is a libvirt network (virsh net-dumpxml).
type LibvirtNetwork struct {
	Name     string         `json:"name"`
	Bridge   string         `json:"bridge,omitempty"`
	Active   bool           `json:"active"`
	Forward  string         `json:"forward,omitempty"`
	Prefixes []netip.Prefix `json:"prefixes,omitempty"`
}

// Listener is a socket bound to port 53.
type Listener struct {
	Proto   string         `json:"proto"`
	Local   netip.AddrPort `json:"local"`
	PID     int            `json:"pid,omitempty"`
	Process string         `json:"process,omitempty"`
}

// IPv6Host says whether the host can carry IPv6.
type IPv6Host struct {
	Disabled bool   `json:"disabled,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// PidFile is a pid file under the state directory.
type PidFile struct {
	Path  string `json:"path"`
	PID   int    `json:"pid"`
	Alive bool   `json:"alive"`
}

// Lease is one line of a dnsmasq lease file.
type Lease struct {
	Expiry   int64      `json:"expiry"`
	MAC      string     `json:"mac"`
	IP       netip.Addr `json:"ip"`
	Hostname string     `json:"hostname,omitempty"`
	ClientID string     `json:"client_id,omitempty"`
}

// Accel is the accelerator decision taken by the caller.
type Accel struct {
	Name   string `json:"name,omitempty"` // "kvm" or "tcg"
	Reason string `json:"reason,omitempty"`
}

// SourceError records a source Collect could not read.
type SourceError struct {
	Source string `json:"source"`
	Err    string `json:"error"`
}

// Link returns the link with the given name.
func (s *HostState) Link(name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// Bridge returns the bridge with the given name.
func (s *HostState) Bridge(name string) (Bridge, bool) {
	for _, b := range s.Bridges {
		if b.Name == name {
			return b, true
		}
	}
	return Bridge{}, false
}

// baselines returns Baseline and Baselines, each bridge once.
func (s *HostState) baselines() []Bridge {
	var out []Bridge
	seen := map[string]bool{}
	all := s.Baselines
	if s.Baseline != nil {
		all = append([]Bridge{*s.Baseline}, all...)
	}
	for _, b := range all {
		if !seen[b.Name] {
			seen[b.Name] = true
			out = append(out, b)
		}
	}
	return out
}

func (s *HostState) fail(source string, err error) {
	s.Errors = append(s.Errors, SourceError{Source: source, Err: err.Error()})
}
