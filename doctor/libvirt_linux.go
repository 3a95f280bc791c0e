package doctor

import (
	"context"
	"strings"

	"hybridlab/topology"
)

// readLibvirt lists libvirt networks with their bridges and prefixes
// (`virsh net-list --all`, `virsh net-dumpxml`) and the names of all
// domains (`virsh list --all`), or takes the networks from Options.Libvirt
// (and then lists no domains).
func readLibvirt(ctx context.Context, _ *topology.Plan, o *Options, s *HostState) error {
	if o.NoLibvirt {
		return nil
	}
	if o.Libvirt != nil {
		s.Libvirt = o.Libvirt
		return nil
	}
	all, err := run(ctx, "virsh", "-c", o.LibvirtURI, "net-list", "--all", "--name")
	if err != nil {
		return err
	}
	active, err := run(ctx, "virsh", "-c", o.LibvirtURI, "net-list", "--name")
	if err != nil {
		return err
	}
	up := map[string]bool{}
	for _, n := range strings.Fields(active) {
		up[n] = true
	}
	for _, name := range strings.Fields(all) {
		x, err := run(ctx, "virsh", "-c", o.LibvirtURI, "net-dumpxml", name)
		if err != nil {
			return err
		}
		n, err := parseNetXML([]byte(x))
		if err != nil {
			return err
		}
		n.Active = up[name]
		s.Libvirt = append(s.Libvirt, n)
	}
	doms, err := run(ctx, "virsh", "-c", o.LibvirtURI, "list", "--all", "--name")
	if err != nil {
		return err
	}
	s.Domains = strings.Fields(doms)
	for _, d := range s.Domains {
		desc, err := run(ctx, "virsh", "-c", o.LibvirtURI, "desc", d)
		if err != nil || strings.HasPrefix(desc, "No description") {
			continue
		}
		if s.DomainDescs == nil {
			s.DomainDescs = map[string]string{}
		}
		s.DomainDescs[d] = strings.TrimSpace(desc)
	}
	return nil
}
