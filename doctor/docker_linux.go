package doctor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"hybridlab/topology"
)

// bridgeNameOption is the Docker network option naming its Linux bridge.
const bridgeNameOption = "com.docker.network.bridge.name"

// readDocker lists Docker networks and containers (`docker network
// inspect`, `docker ps -a`), or takes them from Options.Docker.
func readDocker(ctx context.Context, plan *topology.Plan, o *Options, s *HostState) error {
	if o.NoDocker {
		return nil
	}
	if o.Docker != nil {
		s.Docker = *o.Docker
		return nil
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("connect to docker: %w", err)
	}
	defer cli.Close()
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return fmt.Errorf("list docker networks: %w", err)
	}
	for _, n := range nets {
		s.Docker.Networks = append(s.Docker.Networks, dockerNetwork(n))
	}
	ctrs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return fmt.Errorf("list docker containers: %w", err)
	}
	for _, c := range ctrs {
		dc := dockerContainer(c)
		if c.State == "running" && attachedToLab(plan, dc) {
			if err := hostSides(ctx, cli, &dc); err != nil {
				return err
			}
		}
		s.Docker.Containers = append(s.Docker.Containers, dc)
	}
	return nil
}

func dockerNetwork(n network.Summary) DockerNetwork {
	dn := DockerNetwork{ID: n.ID, Name: n.Name, Driver: n.Driver, Labels: n.Labels}
	if n.Driver == "bridge" {
		dn.Bridge = n.Options[bridgeNameOption]
		if dn.Bridge == "" && len(n.ID) >= 12 {
			dn.Bridge = "br-" + n.ID[:12]
		}
	}
	for _, c := range n.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil {
			dn.Subnets = append(dn.Subnets, p.Masked())
		}
	}
	return dn
}

func dockerContainer(c container.Summary) DockerContainer {
	dc := DockerContainer{ID: c.ID, State: c.State, Labels: c.Labels}
	if len(c.Names) > 0 {
		dc.Name = strings.TrimPrefix(c.Names[0], "/")
	}
	if c.NetworkSettings == nil {
		return dc
	}
	for name, ep := range c.NetworkSettings.Networks {
		if ep == nil {
			continue
		}
		ip, _ := netip.ParseAddr(ep.IPAddress)
		dc.Endpoints = append(dc.Endpoints, Endpoint{Network: name, IP: ip,
			MAC: strings.ToLower(ep.MacAddress)})
	}
	return dc
}

// attachedToLab reports whether c has an endpoint on the Docker network of
// any of the lab's segments.
func attachedToLab(plan *topology.Plan, c DockerContainer) bool {
	for _, e := range c.Endpoints {
		if isLabNetwork(plan, e.Network) {
			return true
		}
	}
	return false
}

// hostSides finds, for each endpoint, the host end of the container's veth:
// the container interface with the endpoint's MAC names its peer's ifindex.
func hostSides(ctx context.Context, cli *client.Client, c *DockerContainer) error {
	info, err := cli.ContainerInspect(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("inspect container %q: %w", c.Name, err)
	}
	if info.NetworkSettings == nil || info.NetworkSettings.SandboxKey == "" {
		return nil
	}
	ns, err := netns.GetFromPath(info.NetworkSettings.SandboxKey)
	if err != nil {
		return fmt.Errorf("open netns of container %q: %w", c.Name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("open netlink in container %q: %w", c.Name, err)
	}
	defer h.Close()
	inner, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links of container %q: %w", c.Name, err)
	}
	for i := range c.Endpoints {
		peerIndex := peerOf(inner, c.Endpoints[i].MAC)
		if peerIndex == 0 {
			continue
		}
		if host, err := netlink.LinkByIndex(peerIndex); err == nil {
			c.Endpoints[i].HostVeth = host.Attrs().Name
			if m, err := netlink.LinkByIndex(host.Attrs().MasterIndex); err == nil {
				c.Endpoints[i].HostMaster = m.Attrs().Name
			}
		}
	}
	return nil
}

func peerOf(links []netlink.Link, mac string) int {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return 0
	}
	for _, l := range links {
		if l.Type() == "veth" && l.Attrs().HardwareAddr.String() == hw.String() {
			return l.Attrs().ParentIndex
		}
	}
	return 0
}
