package main

import (
	"os"

	"github.com/spf13/cobra"

	"hybridlab/provision"
)

// newDNSSyncCmd is the process `up` starts to keep DNS in step with Docker;
// people do not run it, so it is hidden from --help.
func newDNSSyncCmd() *cobra.Command {
	var plan string
	cmd := &cobra.Command{
		Use:    "dns-sync --plan FILE",
		Short:  "Follow Docker events and keep lab DNS records for containers started after up",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return provision.RunDNSSync(cmd.Context(), plan, os.Stderr)
		},
	}
	cmd.Flags().StringVar(&plan, "plan", "", "the plan up wrote (STATE/plan.json)")
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}
