package provision

import (
	"context"
	"fmt"
	"strings"

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
	Lab       string         `json:"lab"`
	Record    *Record        `json:"record,omitempty"`
	Bridge    *bridge.Status `json:"bridge,omitempty"`
	BridgeErr string         `json:"bridge_error,omitempty"`
	// Segments holds the bridges of the lab's other segments, in plan order.
	Segments   []SegmentLive        `json:"segments,omitempty"`
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

// SegmentLive is the bridge of one segment other than main.
type SegmentLive struct {
	Name      string         `json:"name"`
	Bridge    *bridge.Status `json:"bridge,omitempty"`
	BridgeErr string         `json:"bridge_error,omitempty"`
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
	for _, seg := range p.AllSegments()[1:] {
		live := SegmentLive{Name: seg.Name}
		if st, err := bridge.Inspect(seg.Bridge.Name); err != nil {
			live.BridgeErr = err.Error()
		} else {
			live.Bridge = &st
		}
		s.Segments = append(s.Segments, live)
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
	s.VMs, err = v.labDomains(p)
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

// LedgerProblems compares the running lab with the plan's ledger: each
// node must run with exactly its planned address and MAC, and every VM's
// lease must match its reservation. It returns how many nodes it checked
// and one line per problem.
func (s *LabStatus) LedgerProblems() (checked int, problems []string) {
	for _, n := range s.Plan.Nodes {
		checked++
		live, ok := s.Nodes[n.Name]
		switch {
		case !ok || !live.Running:
			problems = append(problems, fmt.Sprintf("%s %s is not running", n.Kind, n.Name))
		case live.IP != "" && live.IP != n.IP.String():
			problems = append(problems, fmt.Sprintf("%s %s has %s, the plan says %s",
				n.Kind, n.Name, live.IP, n.IP))
		case live.MAC != "" && !strings.EqualFold(live.MAC, n.MAC):
			problems = append(problems, fmt.Sprintf("%s %s has mac %s, the plan says %s",
				n.Kind, n.Name, live.MAC, n.MAC))
		}
	}
	for _, m := range s.Drift {
		problems = append(problems, "lease drift: "+m.String())
	}
	return checked, problems
}
