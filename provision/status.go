package provision

import (
	"context"

	"github.com/docker/docker/client"

	"hybridlab/policy"
	"hybridlab/provision/bridge"
	"hybridlab/provision/containers"
	"hybridlab/provision/dnsmasq"
	"hybridlab/provision/guard"
	"hybridlab/provision/libvirt"
	"hybridlab/topology"
)

// LabStatus is what `setup status` shows: each part of the lab as the host
// has it now. A part that could not be read carries its error instead.
type LabStatus struct {
	Lab        string               `json:"lab"`
	Record     *Record              `json:"record,omitempty"`
	Bridge     *bridge.Status       `json:"bridge,omitempty"`
	BridgeErr  string               `json:"bridge_error,omitempty"`
	DNS        *dnsmasq.State       `json:"dns,omitempty"`
	Drift      []dnsmasq.Mismatch   `json:"lease_drift,omitempty"`
	Containers []containers.Info    `json:"containers,omitempty"`
	DockerErr  string               `json:"docker_error,omitempty"`
	VMs        []libvirt.Domain     `json:"vms,omitempty"`
	LibvirtErr string               `json:"libvirt_error,omitempty"`
	Guard      *guard.State         `json:"guard,omitempty"`
	GuardErr   string               `json:"guard_error,omitempty"`
	Policy     []policy.RuleCounter `json:"policy,omitempty"`
	Plan       *topology.Plan       `json:"-"`
	Nodes      map[string]NodeLive  `json:"nodes"`
}

// NodeLive is one planned node as found on the host.
type NodeLive struct {
	Running bool   `json:"running"`
	IP      string `json:"ip,omitempty"`
	MAC     string `json:"mac,omitempty"`
	Port    string `json:"port,omitempty"`
}

// Status reads the lab's state from the kernel, dnsmasq, Docker, libvirt
// and nftables. It changes nothing.
func Status(ctx context.Context, p *topology.Plan) *LabStatus {
	s := &LabStatus{Lab: p.Lab, Plan: p, Nodes: map[string]NodeLive{}}
	s.Record, _ = LoadRecord(p.Lab)
	if st, err := bridge.Inspect(p.Bridge.Name); err != nil {
		s.BridgeErr = err.Error()
	} else {
		s.Bridge = &st
	}
	if st, err := dnsmasq.Status(StateDir(p.Lab)); err == nil {
		s.DNS = &st
		s.Drift = dnsmasq.Drift(p, st.Leases)
	}
	if st, err := guard.Status(p.Lab); err != nil {
		s.GuardErr = err.Error()
	} else {
		s.Guard = &st
	}
	s.Policy, _ = policy.Status(p.Lab)
	s.readContainers(ctx, p)
	s.readVMs(p)
	return s
}

func (s *LabStatus) readContainers(ctx context.Context, p *topology.Plan) {
	if !socketAnswers(dockerSocket) {
		s.DockerErr = "dockerd is not running"
		return
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		s.DockerErr = err.Error()
		return
	}
	defer cli.Close()
	s.Containers, err = containers.List(ctx, cli, p.Lab)
	if err != nil {
		s.DockerErr = err.Error()
	}
	for _, c := range s.Containers {
		s.Nodes[c.Node] = NodeLive{Running: c.State == "running", IP: c.IP, MAC: c.MAC,
			Port: c.Veth}
	}
}

func (s *LabStatus) readVMs(p *topology.Plan) {
	if !socketAnswers(LibvirtSocket) {
		if len(p.VMs()) > 0 {
			s.LibvirtErr = "libvirtd is not running"
		}
		return
	}
	v, err := newVMRun()
	if err != nil {
		s.LibvirtErr = err.Error()
		return
	}
	defer v.close()
	s.VMs, err = v.virt.Domains(p.Lab + "-")
	if err != nil {
		s.LibvirtErr = err.Error()
	}
	for _, d := range s.VMs {
		for _, n := range p.VMs() {
			if n.Object != d.Name {
				continue
			}
			live := NodeLive{Running: d.State == "running"}
			for _, nic := range d.Interfaces {
				if nic.MAC == n.MAC {
					live.MAC, live.Port = nic.MAC, nic.Tap
				}
			}
			if s.DNS != nil {
				for _, l := range s.DNS.Leases {
					if l.MAC == n.MAC {
						live.IP = l.IP.String()
					}
				}
			}
			s.Nodes[n.Name] = live
		}
	}
}
