package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"hybridlab/provision"
)

func newBoxCmd(g *globals) *cobra.Command {
	var rebuild bool
	cmd := &cobra.Command{
		Use:   "box",
		Short: "Build the lab's offline Vagrant box from Debian's packages (cached)",
		Long: `box builds the Vagrant box every lab VM boots: a minimal Debian 12 rootfs
made with mmdebstrap from Debian's packages (systemd, openssh-server, sudo,
iproute2, ping, docker.io for the docker role, tcpdump for the observer), the
probe agent, a vagrant user with Vagrant's insecure key, and no timers that
call out; packed as a libvirt box with its kernel for direct boot, and added
to Vagrant under /var/lib/hybridlab/vagrant.d. It is cached by its inputs:
a second run does nothing; --rebuild builds it again. 'setup up' runs it
when the box is missing. Needs root and the Debian mirror.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errors.New("box runs mmdebstrap and chroot and needs root")
			}
			b, err := provision.BuildBox(cmd.Context(), rebuild, prefixWriter(os.Stderr, "    | "))
			if err != nil {
				return err
			}
			how := fmt.Sprintf("built in %s", b.BuildTime.Round(1e8))
			if b.Cached {
				how = "cached"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "box %s %s: %s, %.0f MB, %s\n", b.Name, b.Version,
				how, float64(b.Size)/1e6, b.File)
			return nil
		},
	}
	cmd.Flags().BoolVar(&rebuild, "rebuild", false, "build even when a cached box matches")
	return cmd
}
