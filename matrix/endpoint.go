package matrix

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"

	"hybridlab/probes/remote"
	"hybridlab/topology"
)

// Endpoint kinds.
const (
	KindContainer = topology.KindContainer
	KindVM        = topology.KindVM
	KindHost      = "host"
	KindNetns     = "netns"
)

// GatewayName is the name of the host's endpoint on the lab bridges.
const GatewayName = "gateway"

// Agent runs the probe agent and plain commands (ping) on one node. Every runner of package
// remote (DockerExec, *SSH, Local, Netns) is one.
type Agent interface {
	remote.Runner
	remote.Execer
}

// Starter starts a long-lived agent command; remote.Local and remote.Netns are starters.
type Starter interface {
	Start(ctx context.Context, args ...string) (*remote.Process, error)
}

// Endpoint is one node of the matrix: a source of probes through Agent and a target at IP.
type Endpoint struct {
	Name string     `json:"name"`
	Kind string     `json:"kind"`
	IP   netip.Addr `json:"ip"`
	// Agent runs the probes whose source is this endpoint.
	Agent Agent `json:"-"`
	// Echo is true when the endpoint answers the agent's TCP and UDP echo on 7000/7001 (lab
	// containers and VMs run `probe serve`); without it only ICMP targets it.
	Echo bool `json:"echo"`
	// Addrs are further addresses the endpoint answers on: the host's gateways on the other
	// segments of a routed lab. A source on one of their subnets targets that address, so
	// it reaches the host on its own segment rather than through the host's routing.
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// Serve, when set, makes Run start `probe serve` bound to IP (and to each of Addrs) for
	// the run's duration.
	Serve Starter `json:"-"`
}

// TargetFrom returns the address from probes e: the one of e's addresses on from's
// segment of plan p, else e.IP. A nil plan gives e.IP.
func (e Endpoint) TargetFrom(p *topology.Plan, from Endpoint) netip.Addr {
	if p == nil || len(e.Addrs) == 0 {
		return e.IP
	}
	seg, ok := p.SegmentContaining(from.IP)
	if !ok {
		return e.IP
	}
	for _, a := range append([]netip.Addr{e.IP}, e.Addrs...) {
		if seg.Subnet.Contains(a) {
			return a
		}
	}
	return e.IP
}

// addrs returns IP and Addrs.
func (e Endpoint) addrs() []netip.Addr { return append([]netip.Addr{e.IP}, e.Addrs...) }

// Container is the endpoint of a lab container, reached with `docker exec`.
func Container(api remote.ExecAPI, n topology.Node) Endpoint {
	return Endpoint{Name: n.Name, Kind: KindContainer, IP: n.IP, Echo: true,
		Agent: remote.DockerExec{API: api, Container: n.Object}}
}

// VM is the endpoint of a lab VM, reached over SSH to its lab address as user vagrant with
// key (Vagrant's insecure key when empty). Close releases its connection.
func VM(n topology.Node, key string) Endpoint {
	return Endpoint{Name: n.Name, Kind: KindVM, IP: n.IP, Echo: true,
		Agent: &remote.SSH{Addr: n.IP.String(), KeyPath: key}}
}

// Gateway is the host itself on the lab bridge's address; in a routed lab also on every other
// segment's gateway (Addrs), so each node targets the host on its own segment. Its probes run
// the agent binary at agentPath in the caller's network namespace, and Run serves the echo on
// every gateway address while it runs (the host runs no `probe serve` of its own).
func Gateway(p *topology.Plan, agentPath string) Endpoint {
	local := remote.Local{Path: agentPath}
	e := Endpoint{Name: GatewayName, Kind: KindHost, IP: p.Gateway, Echo: true,
		Agent: hostAgent{Agent: local}, Serve: local}
	for _, gw := range p.Gateways() {
		if gw != p.Gateway {
			e.Addrs = append(e.Addrs, gw)
		}
	}
	return e
}

// Namespace is a network namespace with a port on a lab bridge at ip (made by the caller,
// e.g. `ip netns add` and a veth into the bridge). Its probes run the host's agent binary at
// agentPath inside the namespace, and Run serves the echo there while it runs.
func Namespace(name, netns string, ip netip.Addr, agentPath string) Endpoint {
	ns := remote.Netns{Name: netns, Path: agentPath}
	return Endpoint{Name: name, Kind: KindNetns, IP: ip, Echo: true,
		Agent: hostAgent{Agent: ns}, Serve: ns}
}

// hostAgent runs host binaries (on the host or in one of its namespaces), through busybox
// when the host lacks the command itself: a minimal Debian host has no ping, and
// busybox-static is a dependency of the lab.
type hostAgent struct{ Agent }

// Exec implements remote.Execer.
func (h hostAgent) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) > 0 {
		if _, err := exec.LookPath(argv[0]); err != nil {
			if _, berr := exec.LookPath("busybox"); berr == nil {
				argv = append([]string{"busybox"}, argv...)
			}
		}
	}
	return h.Agent.Exec(ctx, argv...)
}

// EndpointOptions select what FromPlan includes.
type EndpointOptions struct {
	// Docker execs into containers; nil leaves containers out.
	Docker remote.ExecAPI
	// VMs includes the plan's VMs, over SSH with SSHKey (default Vagrant's insecure key).
	VMs    bool
	SSHKey string
	// HostAgent is the agent binary for the gateway endpoint; "" leaves the host out.
	HostAgent string
}

// FromPlan returns the endpoints of the plan's nodes in plan order, then the gateway.
func FromPlan(p *topology.Plan, o EndpointOptions) []Endpoint {
	var out []Endpoint
	for _, n := range p.Nodes {
		switch {
		case n.Kind == topology.KindVM && o.VMs:
			out = append(out, VM(n, o.SSHKey))
		case n.Kind == topology.KindContainer && o.Docker != nil:
			out = append(out, Container(o.Docker, n))
		}
	}
	if o.HostAgent != "" {
		out = append(out, Gateway(p, o.HostAgent))
	}
	return out
}

// Close releases what the endpoints hold open (SSH connections to VMs).
func Close(eps []Endpoint) error {
	var errs []error
	for _, e := range eps {
		if s, ok := e.Agent.(*remote.SSH); ok {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
