package provision

import (
	"context"
	"fmt"
	"slices"

	"github.com/docker/docker/client"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"hybridlab/policy"
	"hybridlab/provision/containers"
	"hybridlab/provision/dnsmasq"
	"hybridlab/provision/guard"
	"hybridlab/topology"
)

// Residue lists the lab's objects that still exist: its tagged bridge,
// labelled containers and networks, its nft table and DOCKER-USER rules,
// its dnsmasq, and libvirt domains and networks named after it. Down ends
// with it; an empty list means the lab is gone. A daemon that is not
// running holds nothing of the lab's, so it is skipped.
func Residue(ctx context.Context, p *topology.Plan) []string {
	var out []string
	for _, name := range bridgesLeft(p) {
		out = append(out, "bridge "+name)
	}
	if st, err := guard.Status(p.Lab); err == nil {
		if st.Present {
			out = append(out, "nft table inet "+st.Table)
		}
		for _, du := range st.DockerUser {
			if len(du.Rules) > 0 {
				out = append(out, du.Family+" filter DOCKER-USER rules tagged "+guard.Tag(p.Lab))
			}
		}
	}
	if st, err := dnsmasq.Status(StateDir(p.Lab)); err == nil && st.Running {
		out = append(out, fmt.Sprintf("dnsmasq pid %d", st.PID))
	}
	if present, err := policy.Present(p.Lab); err == nil && present {
		out = append(out, "nft tables inet/bridge "+policy.TableName(p.Lab))
	}
	if pid, ok := syncRunning(StateDir(p.Lab)); ok {
		out = append(out, fmt.Sprintf("dns sync pid %d", pid))
	}
	out = append(out, dockerResidue(ctx, p)...)
	return append(out, libvirtResidue(p)...)
}

func dockerResidue(ctx context.Context, p *topology.Plan) []string {
	if !socketAnswers(dockerSocket) {
		return nil
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return []string{"docker: " + err.Error()}
	}
	defer cli.Close()
	list, err := containers.List(ctx, cli, p.Lab)
	if err != nil {
		return []string{"docker: " + err.Error()}
	}
	var out []string
	for _, c := range list {
		out = append(out, "container "+c.Name)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", topology.LabelLab+"="+p.Lab))})
	if err != nil {
		return append(out, "docker: "+err.Error())
	}
	for _, n := range nets {
		if !slices.Contains(out, "docker network "+n.Name) {
			out = append(out, "docker network "+n.Name)
		}
	}
	return out
}

func libvirtResidue(p *topology.Plan) []string {
	if !socketAnswers(LibvirtSocket) {
		return nil
	}
	v, err := newVMRun()
	if err != nil {
		return []string{"libvirt: " + err.Error()}
	}
	defer v.close()
	var out []string
	doms, err := v.labDomains(p)
	if err != nil {
		return []string{"libvirt: " + err.Error()}
	}
	for _, d := range doms {
		out = append(out, "libvirt domain "+d.Name)
	}
	nets, err := v.virt.NetworkPrefixes()
	if err != nil {
		return append(out, "libvirt: "+err.Error())
	}
	for _, n := range nets {
		if n.Name == p.Management.Network {
			out = append(out, "libvirt network "+n.Name)
		}
	}
	return out
}
