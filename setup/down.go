package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"hybridlab/provision"
)

func newDownCmd(g *globals) *cobra.Command {
	var stopDaemons bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove exactly what up made, verify it is gone, and report it (root)",
		Long: `down removes the lab's VMs (and the libvirt domains, volumes and networks
vagrant-libvirt made for them), containers, Docker network, dnsmasq, bridge and
nftables rules: everything labelled or tagged with the lab's name. It then
checks that none of it is left and prints what it removed. Objects that
existed before up (an adopted bridge, a running dockerd) are left alone.
down on a lab that is not up does nothing and succeeds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return errors.New("down changes the host and needs root; run it as root")
			}
			rep, err := provision.Down(cmd.Context(), p, provision.Options{
				StopDaemons: stopDaemons,
				Progress:    printProgress(os.Stderr),
				Output:      prefixWriter(os.Stderr, "    | "),
			})
			if g.json && rep != nil {
				if jerr := writeJSON(cmd.OutOrStdout(), rep); jerr != nil {
					return jerr
				}
			} else if rep != nil {
				printDown(cmd.OutOrStdout(), p.Lab, rep)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print the removal report as JSON")
	cmd.Flags().BoolVar(&stopDaemons, "stop-daemons", false,
		"also stop dockerd/libvirtd/virtlogd if up started them")
	return cmd
}

func printDown(w interface{ Write([]byte) (int, error) }, lab string, rep *provision.DownReport) {
	if len(rep.Removed) == 0 {
		fmt.Fprintf(w, "lab %q: nothing to remove\n", lab)
	}
	for _, r := range rep.Removed {
		fmt.Fprintf(w, "removed %s\n", r)
	}
	for _, k := range rep.Kept {
		fmt.Fprintf(w, "kept    %s\n", k)
	}
	if len(rep.Residue) > 0 {
		for _, r := range rep.Residue {
			fmt.Fprintf(w, "LEFT    %s\n", r)
		}
		return
	}
	fmt.Fprintf(w, "lab %q is down; verified: no lab objects left (%.1fs)\n", lab, rep.Seconds)
}
