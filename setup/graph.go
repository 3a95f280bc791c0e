package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func newGraphCmd(g *globals) *cobra.Command {
	var format, out string
	var live bool
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Draw the lab (host, bridge, VMs, containers, addresses, DNS names) as dot, svg or html",
		Long: `graph draws the lab's plan with Graphviz (run in-process; nothing to install):
the host with its gateway addresses and guard, the shared bridge (and each
further segment, routed by the host, as its own box), every VM and
container with its role, IP, MAC and DNS name, and the management network.
With --live (root), nodes that are not running are marked down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			var status map[string]bool
			if live {
				status = liveStatus(cmd.Context(), p)
			}
			switch format {
			case "dot", "svg", "html":
			default:
				return fmt.Errorf("--format %q: use dot, svg or html", format)
			}
			var w io.Writer = cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if err := renderGraph(cmd.Context(), p, format, status, w); err != nil {
				return err
			}
			if out != "" && out != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "svg", "dot, svg or html")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().BoolVar(&live, "live", false, "mark nodes that are not running (reads Docker and libvirt)")
	return cmd
}
