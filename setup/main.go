// Command setup builds, inspects and removes a hybridlab lab: Vagrant/libvirt
// VMs and Docker containers on one shared Linux bridge and subnet.
//
//	go run ./setup plan              # the IP plan of the default lab
//	go run ./setup up                # build the lab (root)
//	go run ./setup status            # what is running
//	go run ./setup down              # remove exactly what up made
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"hybridlab/topology"
)

// globals are the flags every command shares.
type globals struct {
	labFile string
	json    bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			// The command has said what was wrong; only the status is left.
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
}

// exitCode lets a command choose its exit status (doctor: 2 on errors).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "setup",
		Short: "Build and test a hybrid lab: VMs and containers on one bridge",
		Long: `setup builds a hybrid lab on this host: Vagrant/libvirt VMs and Docker
containers on one shared Linux bridge and subnet, with the lab's own DNS/DHCP
(dnsmasq) and an nftables guard that keeps lab traffic on this machine.

Without -f, $HYBRIDLAB_LAB names the lab file, else the embedded default lab
is used (see 'setup plan').
Commands that change the host need root.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().StringVarP(&g.labFile, "file", "f", os.Getenv("HYBRIDLAB_LAB"),
		"lab description (lab.yaml); default $HYBRIDLAB_LAB, else the embedded default lab")
	root.AddCommand(
		newPlanCmd(g),
		newUpCmd(g),
		newDownCmd(g),
		newStatusCmd(g),
		newDepsCmd(g),
		newDoctorCmd(g),
		newGraphCmd(g),
		newBoxCmd(g),
		newAddVMCmd(g),
		newDNSSyncCmd(),
		newReportCmd(g),
		newCheckCmd(g),
	)
	return root
}

// loadPlan reads the lab file (or the default lab) and computes its plan.
// It never touches the host.
func (g *globals) loadPlan() (*topology.Plan, error) {
	lab, err := topology.Load(g.labFile)
	if err != nil {
		return nil, err
	}
	extra, err := loadExtraVMs(lab)
	if err != nil {
		return nil, err
	}
	lab.VMs = append(lab.VMs, extra...)
	p, err := topology.NewPlan(lab)
	if err != nil {
		name := g.labFile
		if name == "" {
			name = "default lab"
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}
