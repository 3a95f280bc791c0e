package provision

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"hybridlab/provision/deps"
)

// DepsResult says what EnsureDeps installed and started.
type DepsResult struct {
	Installed []string      `json:"installed,omitempty"`
	Daemons   []deps.Daemon `json:"daemons"`
}

// EnsureDeps installs the Debian packages of the capabilities (the network
// half is always included) when Install is set, and starts dockerd — and,
// with deps.VMs, virtlogd and libvirtd — when they are not running.
// Without Install, a missing package is an error listing them all and the
// command to install them.
func EnsureDeps(ctx context.Context, caps []deps.Capability, opts Options) (DepsResult, error) {
	var res DepsResult
	caps = append([]deps.Capability{deps.Network}, caps...)
	vms := slices.Contains(caps, deps.VMs)
	pkgs := deps.Packages(caps...)
	missing, err := deps.Missing(ctx, pkgs)
	if err != nil {
		return res, err
	}
	if len(missing) > 0 {
		if !opts.Install {
			return res, fmt.Errorf("missing packages: %s; install them with: %s",
				strings.Join(missing, " "), deps.InstallCommand(missing))
		}
		opts.progress("deps", "installing %s", strings.Join(missing, " "))
		if err := deps.Install(ctx, missing, opts.output()); err != nil {
			return res, err
		}
		res.Installed = missing
	}
	d, err := deps.EnsureDockerd(ctx)
	if err != nil {
		return res, err
	}
	res.Daemons = append(res.Daemons, d)
	if vms {
		ds, err := deps.EnsureLibvirtd(ctx)
		if err != nil {
			return res, err
		}
		res.Daemons = append(res.Daemons, ds...)
	}
	for _, d := range res.Daemons {
		if d.Started {
			opts.progress("deps", "started %s (pid %d, ready in %s, log %s)", d.Name, d.PID,
				d.Ready.Round(1e6), d.Log)
		}
	}
	return res, nil
}

func (u *upRun) deps(ctx context.Context) error {
	wantVMs := u.opts.VMs && len(u.plan.VMs()) > 0
	var caps []deps.Capability
	if wantVMs {
		caps = append(caps, deps.VMs)
	}
	res, err := EnsureDeps(ctx, caps, *u.opts)
	if err != nil {
		return err
	}
	if len(res.Installed) > 0 {
		u.changed("installed %s", strings.Join(res.Installed, " "))
	}
	for _, d := range res.Daemons {
		if d.Started {
			if u.rec.Started == nil {
				u.rec.Started = map[string]deps.Daemon{}
			}
			u.rec.Started[d.Name] = d
			u.changed("started %s (pid %d)", d.Name, d.PID)
		}
	}
	if wantVMs {
		v, err := newVMRun()
		if err != nil {
			return err
		}
		u.vms = v
	}
	return nil
}
