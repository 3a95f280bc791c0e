package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"hybridlab/policy"
	"hybridlab/provision"
	"hybridlab/topology"
)

type upFlags struct {
	dryRun      bool
	vms         bool
	allowEgress bool
	accel       string
	noInstall   bool
	quiet       bool
}

func newUpCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Build the lab: bridge, guard, DNS/DHCP, containers and VMs (root)",
		Long: `up builds the lab described by the plan and leaves it running:

  1. installs missing Debian packages (apt-get) and starts dockerd, and
     virtlogd/libvirtd for VMs, when they are not running (no systemd needed)
  2. refuses a plan whose subnets overlap a route, Docker or libvirt network,
     or whose bridges, Docker networks or containers exist with other
     settings or belong to someone else - before any host change
  3. the nftables guard: lab-subnet traffic never leaves through the uplink
  4. a bridge per segment (fixed MAC, STP off), a Docker network bound to
     each; for several segments, routing between them (ip_forward, DOCKER-USER
     accepts for every pair of lab bridges, no masquerade); the objects of
     segments taken out of the lab file are removed
  5. the lab dnsmasq (DNS for the lab domain on every gateway, DHCP
     reservations for VMs, routes to the other segments)
  6. the network policies, if the lab file declares any
  7. containers and VMs (in parallel), then waits until each has its address

up is idempotent: run twice, the second run changes nothing. An interrupted
up is finished by running up again. 'setup down' removes what up made.
--dry-run prints the steps and the equivalent commands, runs the checks of
step 2 (as root), and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			switch f.accel {
			case "auto", "kvm", "tcg":
			default:
				return fmt.Errorf("--accel %q: use auto (the boot probe decides), kvm or tcg", f.accel)
			}
			if g.json && !f.dryRun {
				return errors.New("--json goes with --dry-run; 'setup status --json' shows a running lab")
			}
			opts := f.options(g)
			if f.dryRun {
				return printDryRun(cmd.OutOrStdout(), g, p, opts)
			}
			if os.Geteuid() != 0 {
				return errors.New("up changes the host and needs root; run it as root " +
					"(or look first with --dry-run)")
			}
			start := time.Now()
			rec, err := provision.Up(cmd.Context(), p, opts)
			switch {
			case errors.Is(err, provision.ErrRefused), errors.Is(err, provision.ErrLocked):
				return fmt.Errorf("up %q: %w", p.Lab, err)
			case err != nil:
				return fmt.Errorf("up %q: %w\n(fix the cause, then run 'go run ./setup up' again "+
					"to finish, or 'go run ./setup down' to remove what was made)", p.Lab, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %q is up in %.1fs: %d containers, %d VMs on %s\n",
				p.Lab, time.Since(start).Seconds(), len(p.Containers()), len(rec.Created["vm"])+
					len(rec.Adopted["vm"]), strings.Join(p.Bridges(), " + "))
			return writeBringup(p, rec)
		},
	}
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what up would build; change nothing")
	cmd.Flags().BoolVar(&g.json, "json", false, "with --dry-run: print plan and steps as JSON")
	cmd.Flags().BoolVar(&f.vms, "vms", true, "bring up the lab's VMs too (false: network and containers only)")
	cmd.Flags().BoolVar(&f.allowEgress, "allow-egress", false,
		"let lab traffic leave through the uplink (the guard drops it by default)")
	cmd.Flags().StringVar(&f.accel, "accel", "auto", "VM accelerator: auto (boot probe), kvm or tcg")
	cmd.Flags().BoolVar(&f.noInstall, "no-install", false, "never run apt-get; fail listing what is missing")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false,
		"do not stream the output of apt-get, mmdebstrap and vagrant")
	return cmd
}

func (f *upFlags) options(g *globals) provision.Options {
	opts := provision.Options{
		VMs:         f.vms,
		AllowEgress: f.allowEgress,
		Accel:       f.accel,
		Install:     !f.noInstall,
		LabFile:     absPath(g.labFile),
		Progress:    printProgress(os.Stderr),
	}
	if !f.quiet {
		opts.Output = prefixWriter(os.Stderr, "    | ")
	}
	return opts
}

func printDryRun(w io.Writer, g *globals, p *topology.Plan, opts provision.Options) error {
	actions := provision.Describe(p, opts)
	if g.json {
		return writeJSON(w, struct {
			Plan    *topology.Plan     `json:"plan"`
			Actions []provision.Action `json:"actions"`
		}{p, actions})
	}
	printPlan(w, p)
	if os.Geteuid() == 0 {
		notes, err := provision.Preflight(context.Background(), p, opts)
		for _, n := range notes {
			fmt.Fprintf(w, "\npreflight: %s\n", n)
		}
		if err != nil {
			return fmt.Errorf("up would refuse before any host change: %w", err)
		}
		fmt.Fprintln(w, "\npreflight: passed (overlaps, bridges, Docker networks, containers, "+
			"images, VM domains)")
	} else {
		fmt.Fprintln(w, "\npreflight: not run (needs root to read the firewall and Docker)")
	}
	fmt.Fprintln(w, "\nup would (dry run, nothing changed):")
	printActions(w, actions)
	if p.Policies != nil {
		text, err := policy.Render(p, p.Policies)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nand apply these network policies (nft):\n%s", text)
	}
	return nil
}

// writeBringup stores the step timings of the last up where the reports
// look for them.
func writeBringup(p *topology.Plan, rec *provision.Record) error {
	path := filepath.Join(provision.StateDir(p.Lab), "bringup.json")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeJSON(f, rec.Timings)
}

func printProgress(w io.Writer) func(provision.Event) {
	start := time.Now()
	return func(e provision.Event) {
		if e.Elapsed > 0 {
			fmt.Fprintf(w, "==> %-9s %s (%.1fs, total %.1fs)\n", e.Step, e.Message,
				e.Elapsed.Seconds(), time.Since(start).Seconds())
			return
		}
		fmt.Fprintf(w, "==> %-9s %s\n", e.Step, e.Message)
	}
}

// absPath makes a lab file path absolute, so the record of `up -f FILE` names it from any
// directory; "" stays "" (the default lab).
func absPath(name string) string {
	if name == "" {
		return ""
	}
	if abs, err := filepath.Abs(name); err == nil {
		return abs
	}
	return name
}
