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
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"hybridlab/provision"
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
	root, g := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			// The command has said what was wrong; only the status is left.
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "setup:", g.withFile(err.Error()))
		os.Exit(1)
	}
}

// exitCode lets a command choose its exit status (doctor: 2 on errors).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRoot() (*cobra.Command, *globals) {
	g := &globals{}
	root := &cobra.Command{
		Use:   "setup",
		Short: "Build and test a hybrid lab: VMs and containers on one bridge",
		Long: `setup builds a hybrid lab on this host: Vagrant/libvirt VMs and Docker
containers on one shared Linux bridge and subnet (plus, if the lab file
declares segments, more bridges and subnets that the host routes between),
with the lab's own DNS/DHCP (dnsmasq) and an nftables guard that keeps lab
traffic on this machine.

Without -f, $HYBRIDLAB_LAB names the lab file, else the embedded default lab
is used (see 'setup plan'). Commands that look at a running lab (down,
status, check, doctor, graph, report, add-vm) instead follow the lab that
'up -f FILE' brought up, when it is the only lab up and the default lab is not.
Commands that change the host need root.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if followsRecord[cmd.Name()] && !cmd.Flags().Changed("file") && g.labFile == "" {
				g.labFile = recordedLabFile(cmd.ErrOrStderr())
			}
		},
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
	return root, g
}

// followsRecord are the commands that act on a running lab: without -f or
// $HYBRIDLAB_LAB they use the lab file of the one lab that is up.
var followsRecord = map[string]bool{"down": true, "status": true, "check": true,
	"doctor": true, "graph": true, "report": true, "add-vm": true}

// recordedLabFile returns the lab file recorded by `up -f FILE` when that lab is the only
// one with a state record and the file still exists, saying so on w; else "" (the default
// lab).
func recordedLabFile(w io.Writer) string {
	entries, err := os.ReadDir(provision.StateRoot)
	if err != nil {
		return ""
	}
	var found []*provision.Record
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(provision.StateDir(e.Name()), "state.json")); err != nil {
			continue
		}
		rec, err := provision.LoadRecord(e.Name())
		if err != nil {
			continue
		}
		if rec.Lab == topology.DefaultName && rec.LabFile == "" {
			return "" // the default lab is up: it stays the default
		}
		found = append(found, rec)
	}
	if len(found) != 1 || found[0].LabFile == "" {
		return ""
	}
	if _, err := os.Stat(found[0].LabFile); err != nil {
		return ""
	}
	fmt.Fprintf(w, "setup: using lab %q from %s (the lab that is up; -f chooses another)\n",
		found[0].Lab, found[0].LabFile)
	return found[0].LabFile
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
