package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"hybridlab/provision"
	"hybridlab/provision/deps"
)

func newDepsCmd(g *globals) *cobra.Command {
	var vms, bench, check bool
	cmd := &cobra.Command{
		Use:   "deps",
		Short: "Install missing Debian packages and start dockerd (and libvirtd with --vms)",
		Long: `deps makes this host ready for a lab. As root on Debian or Ubuntu it installs
what is missing with apt-get (network: docker.io nftables iptables
dnsmasq-base iproute2 busybox-static; with --vms also libvirt, QEMU, Vagrant
with vagrant-libvirt, mmdebstrap), then starts dockerd — and with --vms
virtlogd and libvirtd — when they are not running, without systemd, with
logs in /var/log/hybridlab. --check only lists what is missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			caps := []deps.Capability{deps.Network}
			if vms {
				caps = append(caps, deps.VMs)
			}
			if bench {
				caps = append(caps, deps.Bench, deps.Observer)
			}
			if check {
				missing, err := deps.Missing(cmd.Context(), deps.Packages(caps...))
				if err != nil {
					return err
				}
				if len(missing) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "all packages present")
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "missing: %s\ninstall: %s\n",
					strings.Join(missing, " "), deps.InstallCommand(missing))
				return exitCode(1)
			}
			if os.Geteuid() != 0 {
				return errors.New("deps installs packages and starts daemons and needs root; " +
					"'setup deps --check' lists what is missing")
			}
			res, err := provision.EnsureDeps(cmd.Context(), caps, provision.Options{
				Install:  true,
				Progress: printProgress(os.Stderr),
				Output:   prefixWriter(os.Stderr, "    | "),
			})
			if err != nil {
				return err
			}
			if len(res.Installed) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "installed: %s\n", strings.Join(res.Installed, " "))
			}
			for _, d := range res.Daemons {
				how := "already running"
				if d.Started {
					how = fmt.Sprintf("started (pid %d, log %s)", d.PID, d.Log)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", d.Name, how)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&vms, "vms", false, "also what VMs need: libvirt, QEMU, Vagrant, mmdebstrap")
	cmd.Flags().BoolVar(&bench, "bench", false, "also sockperf, iperf3 and tcpdump for the latency suite")
	cmd.Flags().BoolVar(&check, "check", false, "only list missing packages; install nothing")
	return cmd
}
