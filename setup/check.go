package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"hybridlab/matrix"
	"hybridlab/probes/remote"
	"hybridlab/provision"
	"hybridlab/topology"
)

func newCheckCmd(g *globals) *cobra.Command {
	var count int
	var noVMs bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Quick connectivity matrix of the running lab: ICMP, TCP and UDP between every pair",
		Long: `check probes the running lab from every node to every other node and to the
host (the gateway address): ICMP (ping), TCP and UDP (the probe agent's echo
on 7000/7001), a few requests each, and prints the matrix: rows are sources,
columns targets, each cell the protocols that passed and the median round
trip. It takes seconds, not minutes. Exit status 1 when any cell fails, with
a hint at the likely cause. Needs root (docker exec, SSH to VMs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return errors.New("check runs probes in containers and VMs and needs root")
			}
			cli, err := remote.NewDockerClient()
			if err != nil {
				return err
			}
			defer cli.Close()
			agent, err := provision.AgentBinary(cmd.Context(), os.Stderr)
			if err != nil {
				return err
			}
			eps := matrix.FromPlan(p, matrix.EndpointOptions{Docker: cli,
				VMs: !noVMs && len(p.VMs()) > 0, HostAgent: agent})
			live := liveStatus(cmd.Context(), p)
			eps, stopped := runningOnly(eps, live)
			defer matrix.Close(eps)
			m, err := matrix.Run(cmd.Context(), p, matrix.Options{Endpoints: eps, Count: count})
			if err != nil {
				return err
			}
			if g.json {
				if err := m.WriteJSON(cmd.OutOrStdout()); err != nil {
					return err
				}
			} else if err := m.Print(cmd.OutOrStdout()); err != nil {
				return err
			}
			if len(m.Failed()) > 0 && p.Policies != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "the lab declares network policies: cells they "+
					"deny fail here by design (suites/policy compares against the policy)")
			}
			if len(m.Failed()) > 0 {
				if hint := m.Hint(matrix.GatewayName); hint != "" && p.Policies == nil {
					fmt.Fprintln(cmd.ErrOrStderr(), g.withFile(hint))
				}
				return exitCode(1)
			}
			if len(stopped) > 0 {
				up := "go run ./setup up"
				if !anyVMRunning(p, live) {
					up += " --vms=false" // the lab was brought up without its VMs
				}
				fmt.Fprintln(cmd.ErrOrStderr(), g.withFile(fmt.Sprintf("check: container(s) %s "+
					"declared but not running: '%s' starts them", strings.Join(stopped, ", "),
					up)))
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print the matrix as JSON")
	cmd.Flags().IntVar(&count, "count", 10, "requests per TCP/UDP probe")
	cmd.Flags().BoolVar(&noVMs, "no-vms", false, "leave the VMs out")
	return cmd
}

// anyVMRunning reports whether one of the plan's VMs runs.
func anyVMRunning(p *topology.Plan, live map[string]bool) bool {
	for _, n := range p.VMs() {
		if live[n.Name] {
			return true
		}
	}
	return false
}

// runningOnly drops the endpoints of nodes that are not running, which could only time
// out, and returns the containers among them: VMs are absent by design after
// `up --vms=false`, a declared container is not.
func runningOnly(eps []matrix.Endpoint, running map[string]bool) ([]matrix.Endpoint, []string) {
	var out []matrix.Endpoint
	var stopped []string
	for _, e := range eps {
		if up, planned := running[e.Name]; planned && !up {
			fmt.Fprintf(os.Stderr, "check: %s %s is not running; left out\n", e.Kind, e.Name)
			if e.Kind == topology.KindContainer {
				stopped = append(stopped, e.Name)
			}
			continue
		}
		out = append(out, e)
	}
	return out, stopped
}
