package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"hybridlab/provision"
	"hybridlab/topology"
)

func newPlanCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Print the lab's IP plan (nodes, addresses, MACs, DNS names); touches nothing",
		Long: `plan validates the lab description and prints its IP plan: the bridge, the
DHCP block for VMs, Docker's allocation range, every node with its fixed IP,
MAC and DNS name, and the ledger of every address in use. It reads nothing
from the host and changes nothing. An invalid lab prints one line per problem
and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			printPlan(cmd.OutOrStdout(), p)
			return nil
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print the plan as JSON")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printPlan(w io.Writer, p *topology.Plan) {
	fmt.Fprintf(w, "Lab %q: bridge %s (mac %s, mtu %d), subnet %s, gateway %s, domain %q\n",
		p.Lab, p.Bridge.Name, p.Bridge.MAC, p.MTU, p.Subnet, p.Gateway, p.Domain)
	fmt.Fprintf(w, "  VM DHCP block      %s (MAC-bound reservations, served by the lab dnsmasq)\n",
		p.DHCP)
	fmt.Fprintf(w, "  Docker ip-range    %s (network %s on %s)\n",
		p.Docker.IPRange, p.Docker.Network, p.Bridge.Name)
	for _, s := range p.AllSegments()[1:] {
		fmt.Fprintf(w, "  Segment %-10s bridge %s (mac %s), subnet %s, gateway %s; "+
			"VM block %s, Docker %s (network %s); routed by the host\n",
			s.Name, s.Bridge.Name, s.Bridge.MAC, s.Subnet, s.Gateway, s.DHCP,
			s.Docker.IPRange, s.Docker.Network)
	}
	fmt.Fprintf(w, "  Management net     %s on %s, %s (isolated, for Vagrant's SSH)\n",
		p.Management.Network, p.Management.Bridge, p.Management.Subnet)
	fmt.Fprintf(w, "  Guard              nft table inet %s\n\n", p.NFTable)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if p.Routed() {
		fmt.Fprintln(tw, "NAME\tKIND\tROLE\tSEGMENT\tIP\tMAC\tDNS\tOBJECT")
	} else {
		fmt.Fprintln(tw, "NAME\tKIND\tROLE\tIP\tMAC\tDNS\tOBJECT")
	}
	for _, n := range p.Nodes {
		seg := ""
		if p.Routed() {
			seg = n.Segment + "\t"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\t%s\t%s\t%s\n",
			n.Name, n.Kind, n.Role, seg, n.IP, n.MAC, n.DNS, n.Object)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nAddress ledger (every address the plan hands out):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tOWNER\tNOTE")
	for _, r := range p.Ledger() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.IP, r.Owner, r.Note)
	}
	for _, s := range p.AllSegments() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.DHCP, "dhcp block", "VMs only; reservations above")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Docker.IPRange, "docker ip-range",
			"containers; declared ones pinned from the top")
	}
	tw.Flush()
}

func printActions(w io.Writer, actions []provision.Action) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tOBJECT\tEQUIVALENT COMMAND")
	for _, a := range actions {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Step, a.Object, a.Command)
	}
	tw.Flush()
}
