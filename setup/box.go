package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"hybridlab/provision"
	"hybridlab/provision/box"
)

func newBoxCmd(g *globals) *cobra.Command {
	var rebuild, prune, dryRun bool
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
when the box is missing. Needs root and the Debian mirror.

Each new build removes the box's other versions from the cache, from Vagrant
and from libvirt's pool "default", except those still in use: a version
whose pool volume backs a VM disk, whose files a libvirt domain (running or
only defined) names, or that Vagrant's machine index lists. --prune does
only that, without building, keeping the build of the current inputs (or,
when it is not built, the newest build). A lab another checkout is still
creating VMs for, between its box build and its first VM disk, is not seen
as a user.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errors.New("box runs mmdebstrap and chroot and needs root")
			}
			if dryRun && !prune {
				return errors.New("--dry-run goes with --prune (a build has no dry run)")
			}
			log := prefixWriter(os.Stderr, "    | ")
			if prune {
				return runPrune(cmd.Context(), cmd.OutOrStdout(), log, dryRun)
			}
			b, err := provision.BuildBox(cmd.Context(), rebuild, log)
			if err != nil {
				return err
			}
			how := fmt.Sprintf("built in %s", b.BuildTime.Round(1e8))
			if b.Cached {
				how = "cached"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "box %s %s: %s, %.0f MB, %s\n", b.Name, b.Version,
				how, float64(b.Size)/1e6, b.File)
			if b.Pruned != nil {
				printPruned(cmd.OutOrStdout(), b.Name, *b.Pruned)
			}
			if b.PruneErr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "box %s: prune: %v\n", b.Name, b.PruneErr)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&rebuild, "rebuild", false, "build even when a cached box matches")
	cmd.Flags().BoolVar(&prune, "prune", false,
		"only remove the box's versions that are neither current nor in use")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false,
		"with --prune: print what would be removed, remove nothing")
	cmd.MarkFlagsMutuallyExclusive("rebuild", "prune")
	return cmd
}

// runPrune prunes the box for the inputs the current tree builds.
func runPrune(ctx context.Context, out, log io.Writer, dryRun bool) error {
	agent, err := provision.AgentBinary(ctx, log)
	if err != nil {
		return err
	}
	pr, err := box.Prune(ctx, box.Options{Name: provision.BoxName, Agent: agent,
		Progress: log, DryRun: dryRun})
	if dryRun {
		fmt.Fprintln(out, "dry run: nothing removed")
	}
	printPruned(out, provision.BoxName, pr)
	return err
}

func printPruned(w io.Writer, name string, pr box.Pruned) {
	for _, v := range pr.Removed {
		fmt.Fprintf(w, "box %s %s: removed (%.0f MB:%s)\n", name, v.Version,
			float64(v.Bytes)/1e6, parts(v))
	}
	for _, v := range pr.Kept {
		fmt.Fprintf(w, "box %s %s: kept (%.0f MB): %s\n", name, v.Version,
			float64(v.Bytes)/1e6, strings.Join(v.Why, "; "))
	}
	fmt.Fprintf(w, "box %s: %d versions removed, %.0f MB freed, %d kept\n", name,
		len(pr.Removed), float64(pr.Freed)/1e6, len(pr.Kept))
}

// parts names where a version was: cache, vagrant, pool volume.
func parts(v box.Version) string {
	var s string
	if v.CacheDir != "" {
		s += " cache"
	}
	if v.VagrantDir != "" {
		s += " vagrant"
	}
	if v.Volume != "" {
		s += " volume " + v.Volume
	}
	return s
}
