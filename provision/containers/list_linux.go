package containers

import (
	"context"
	"fmt"
	"sort"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"hybridlab/topology"
)

// Info is one lab container as seen by Docker and the kernel.
type Info struct {
	Name  string
	ID    string
	Node  string
	Role  string
	State string
	// Network, IP and MAC are those of the container's first (normally
	// only) network.
	Network string
	IP      string
	MAC     string
	// Veth is the host-side end of the container's interface and Master
	// the bridge it is a port of (fault B10: Master must be the lab
	// bridge). Both are empty when the container is not running.
	Veth   string
	Master string
}

// List returns the containers labelled with lab, running or not, sorted by
// name (`docker ps -a --filter label=io.hybridlab.lab=LAB`). The host veth
// is found through the container interface's peer index (iflink) read in
// the container's netns, like `ip -n … link` then `ip link show master`.
func List(ctx context.Context, cli client.APIClient, lab string) ([]Info, error) {
	sums, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilter(lab)})
	if err != nil {
		return nil, fmt.Errorf("list containers of lab %q: %w", lab, err)
	}
	var out []Info
	for _, s := range sums {
		c, err := cli.ContainerInspect(ctx, s.ID)
		if err != nil {
			return nil, fmt.Errorf("inspect container %q: %w", s.ID, err)
		}
		info, err := describe(c)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func describe(c container.InspectResponse) (Info, error) {
	info := Info{ID: c.ID, Name: trimSlash(c.Name)}
	if c.Config != nil {
		info.Node = c.Config.Labels[topology.LabelNode]
		info.Role = c.Config.Labels[topology.LabelRole]
	}
	if c.NetworkSettings != nil {
		for name, ep := range c.NetworkSettings.Networks {
			info.Network, info.IP, info.MAC = name, ep.IPAddress, ep.MacAddress
			break
		}
	}
	if c.State == nil {
		return info, nil
	}
	info.State = c.State.Status
	if !c.State.Running || c.State.Pid == 0 || info.MAC == "" {
		return info, nil
	}
	veth, master, err := hostVeth(c.State.Pid, info.MAC)
	if err != nil {
		return info, fmt.Errorf("find host veth of container %q: %w", info.Name, err)
	}
	info.Veth, info.Master = veth, master
	return info, nil
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

// hostVeth finds, in the netns of pid, the interface with MAC mac, and
// returns the name of its peer in the current netns and that peer's master.
func hostVeth(pid int, mac string) (string, string, error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return "", "", fmt.Errorf("open netns of pid %d: %w", pid, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return "", "", fmt.Errorf("open netlink in netns of pid %d: %w", pid, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return "", "", fmt.Errorf("list links in netns of pid %d: %w", pid, err)
	}
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == mac {
			return peerAndMaster(l.Attrs().ParentIndex)
		}
	}
	return "", "", fmt.Errorf("no interface with mac %s in netns of pid %d", mac, pid)
}

func peerAndMaster(index int) (string, string, error) {
	peer, err := netlink.LinkByIndex(index)
	if err != nil {
		return "", "", fmt.Errorf("read host link %d: %w", index, err)
	}
	if peer.Attrs().MasterIndex == 0 {
		return peer.Attrs().Name, "", nil
	}
	master, err := netlink.LinkByIndex(peer.Attrs().MasterIndex)
	if err != nil {
		return peer.Attrs().Name, "", fmt.Errorf("read master of %q: %w", peer.Attrs().Name, err)
	}
	return peer.Attrs().Name, master.Attrs().Name, nil
}
