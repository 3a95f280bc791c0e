package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"hybridlab/provision"
	"hybridlab/provision/bridge"
	"hybridlab/topology"
)

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running lab: bridge and ports, dnsmasq and leases, containers, VMs, guard counters",
		Long: `status reads the lab as the host has it now and compares it with the plan: the
bridge (state, MTU, STP, each port and what it belongs to), dnsmasq (pid,
leases, drift from the plan), every container and VM with its address and
MAC, and the guard's rules with their packet counters. It changes nothing.
Reading nftables and the bridge's ports needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			st := provision.Status(cmd.Context(), p)
			if g.json {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), p, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print the status as JSON")
	return cmd
}

// liveStatus maps each planned node to whether it runs now.
func liveStatus(ctx context.Context, p *topology.Plan) map[string]bool {
	st := provision.Status(ctx, p)
	out := map[string]bool{}
	for _, n := range p.Nodes {
		out[n.Name] = st.Nodes[n.Name].Running
	}
	return out
}

func printStatus(w io.Writer, p *topology.Plan, st *provision.LabStatus) {
	fmt.Fprintf(w, "Lab %q\n", p.Lab)
	printBridgeStatus(w, p, st)
	printDNSStatus(w, st)
	fmt.Fprintln(w, "\nNodes:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tKIND\tSEGMENT\tSTATE\tPLAN IP\tSEEN IP\tPLAN MAC\tSEEN MAC\tPORT")
	for _, n := range p.Nodes {
		live, ok := st.Nodes[n.Name]
		state := "absent"
		if ok && live.Running {
			state = "running"
		} else if ok {
			state = "stopped"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind,
			p.SegmentOf(n).Name, state, n.IP,
			dash(live.IP), n.MAC, dash(live.MAC), dash(live.Port))
	}
	tw.Flush()
	for _, e := range []string{st.DockerErr, st.LibvirtErr} {
		if e != "" {
			fmt.Fprintf(w, "  (%s)\n", e)
		}
	}
	printGuardStatus(w, st)
	printPolicyStatus(w, p, st)
}

func printPolicyStatus(w io.Writer, p *topology.Plan, st *provision.LabStatus) {
	if p.Policies == nil {
		fmt.Fprintln(w, "\nPolicies: none declared (all lab traffic allowed)")
		return
	}
	fmt.Fprintf(w, "\nPolicies: default %s\n", p.Policies.Default)
	for _, r := range st.Policy {
		fmt.Fprintf(w, "  %-28s %8d packets %10d bytes\n", r.Name, r.Packets, r.Bytes)
	}
}

func printBridgeStatus(w io.Writer, p *topology.Plan, st *provision.LabStatus) {
	printBridge(w, p, "", p.Bridge.Name, st.Bridge, st.BridgeErr)
	for _, seg := range st.Segments {
		s, _ := p.Segment(seg.Name)
		printBridge(w, p, seg.Name, s.Bridge.Name, seg.Bridge, seg.BridgeErr)
	}
}

func printBridge(w io.Writer, p *topology.Plan, seg, name string, b *bridge.Status,
	errText string,
) {
	title := "Bridge"
	if seg != "" {
		title = fmt.Sprintf("Segment %s, bridge", seg)
	}
	if b == nil {
		fmt.Fprintf(w, "\n%s %s: absent (%s)\n", title, name, errText)
		return
	}
	owner := "created by hybridlab"
	if b.Lab() != p.Lab {
		owner = "not created by this lab"
	}
	fmt.Fprintf(w, "\n%s %s: %s, mtu %d, mac %s, stp %v, addresses %v (%s)\n",
		title, b.Name, b.OperState, b.MTU, b.MAC, b.STP, b.Addresses, owner)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PORT\tKIND\tOWNER\tMTU\tSTATE")
	for _, port := range b.Ports {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", port.Name, port.Kind, dash(port.Owner),
			port.MTU, port.State)
	}
	tw.Flush()
}

func printDNSStatus(w io.Writer, st *provision.LabStatus) {
	if st.DNS == nil || !st.DNS.Running {
		fmt.Fprintln(w, "\ndnsmasq: not running")
		return
	}
	fmt.Fprintf(w, "\ndnsmasq: pid %d, %d leases\n", st.DNS.PID, len(st.DNS.Leases))
	for _, l := range st.DNS.Leases {
		fmt.Fprintf(w, "  lease %s %s %s (expires %s)\n", l.MAC, l.IP, l.Hostname,
			l.Expiry.Format("15:04:05"))
	}
	for _, m := range st.Drift {
		// A VM that is not up (up --vms=false) has no lease by design.
		if _, up := st.Nodes[m.Node]; up {
			fmt.Fprintf(w, "  DRIFT %s\n", m)
		}
	}
}

func printGuardStatus(w io.Writer, st *provision.LabStatus) {
	if st.Guard == nil {
		fmt.Fprintf(w, "\nGuard: unknown (%s)\n", st.GuardErr)
		return
	}
	g := st.Guard
	fmt.Fprintf(w, "\nGuard: %s\n", g.Explanation)
	for _, r := range g.Rules {
		fmt.Fprintf(w, "  %s %s %s: %s  [%d packets, %d bytes]\n", r.Family, r.Table, r.Chain,
			r.Rule, r.Packets, r.Bytes)
	}
	for _, du := range g.DockerUser {
		for _, r := range du.Rules {
			fmt.Fprintf(w, "  %s filter DOCKER-USER: %s  [%d packets] (FORWARD policy %s)\n",
				du.Family, r.Rule, r.Packets, du.ForwardPolicy)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
