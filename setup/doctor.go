package main

import (
	"github.com/spf13/cobra"

	"hybridlab/doctor"
	"hybridlab/provision"
	"hybridlab/provision/accel"
)

func newDoctorCmd(g *globals) *cobra.Command {
	var ipv6 bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Find what breaks hybrid networks on this host, what it costs and the fix",
		Long: `doctor reads the host (iptables and nftables, br_netfilter, routes and
addresses, Docker and libvirt networks, the lab bridge and its ports, :53
listeners, DHCP leases and Docker endpoints) and checks it for the known ways
Docker + libvirt labs break: FORWARD DROP with br_netfilter, mixed iptables
backends, foreign nftables drops, overlapping subnets, names over 15 bytes,
MTU mismatches, STP delays, a slow accelerator, :53 already taken, IPv6
disabled, leftovers of an earlier lab, and leases or endpoints that drifted
from the plan; for a lab with several segments also IPv4 forwarding off, no
DOCKER-USER accept between two lab bridges, and masquerade rules that would
rewrite traffic between segments. Each finding has an ID, a severity, the evidence and the fix.
Run it before and after 'setup up'. Exit status: 0 clean (or warnings
only), 2 when any error is found. Reading firewalls needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			opts := doctor.Options{WantIPv6: ipv6}
			rec, _ := provision.LoadRecord(p.Lab)
			if rec != nil && rec.Completed {
				opts.Phase = doctor.PhaseRunning
				opts.Baseline = rec.Bridge
				opts.Baselines = rec.Segments
			}
			if d, ok := accel.Cached(); ok {
				opts.Accel = doctor.Accel{Name: string(d.Accel), Reason: d.Reason}
			}
			s, err := doctor.Collect(cmd.Context(), p, opts)
			if err != nil {
				return err
			}
			rep := doctor.NewReport(p, s)
			for i := range rep.Findings {
				rep.Findings[i].Fix = g.withFile(rep.Findings[i].Fix)
			}
			if g.json {
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteTable(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return exitCode(2)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print findings as JSON")
	cmd.Flags().BoolVar(&ipv6, "ipv6", false, "the lab needs IPv6: a host without it is an error")
	return cmd
}
