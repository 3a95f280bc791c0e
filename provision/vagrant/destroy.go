package vagrant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"hybridlab/topology"
)

// Destroy removes nodes' VMs: `vagrant destroy -f` in each VM directory,
// then whatever vagrant-libvirt left (the domain, its volumes in the pool)
// and the VM directory itself. A domain named like a node but owned by
// another lab (see Owner) is left alone. It carries on past failures and
// returns them all; a VM that is already gone is not an error.
func (l *Lab) Destroy(ctx context.Context, nodes []topology.Node, out LineFunc) error {
	var errs []error
	for _, n := range nodes {
		errs = append(errs, l.destroyOne(ctx, n, out))
	}
	return errors.Join(errs...)
}

func (l *Lab) destroyOne(ctx context.Context, n topology.Node, out LineFunc) error {
	var errs []error
	dir := l.cfg.VMDir(n)
	if _, err := os.Stat(filepath.Join(dir, "Vagrantfile")); err == nil {
		errs = append(errs, l.vagrant(ctx, n, out, "destroy", "-f"))
	}
	errs = append(errs, l.removeLeftovers(n))
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove VM dir of %q: %w", n.Name, err))
	}
	if err := os.Remove(l.cfg.SerialLog(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove serial log of %q: %w", n.Name, err))
	}
	return errors.Join(errs...)
}

// removeLeftovers removes what vagrant-libvirt left of n: its domain and
// that domain's volumes, when the domain is the lab's or already gone. A
// domain of the same name that another lab owns stays, volumes and all.
func (l *Lab) removeLeftovers(n topology.Node) error {
	d, found, err := l.virt.Domain(n.Object)
	if err != nil {
		return err
	}
	if found && !l.Owner().Owns(d) {
		return nil
	}
	if err := l.virt.RemoveDomain(n.Object); err != nil {
		return err
	}
	_, err = l.virt.RemoveDomainVolumes(Pool, n.Object)
	return err
}

// boxVolumeMarker is in the name of every box volume vagrant-libvirt
// uploads into the pool.
const boxVolumeMarker = "_vagrant_box_image_"

// Teardown destroys every VM of the plan (see Destroy), and removes the
// management network and storage pool if this lab created them. The pool
// goes only when no domain at all is left on the host; the box volume goes
// with it. It is idempotent.
func (l *Lab) Teardown(ctx context.Context, out LineFunc) error {
	errs := []error{l.Destroy(ctx, l.cfg.Plan.VMs(), out)}
	own, err := l.readOwnership()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if own.NetworkCreated {
		errs = append(errs, l.virt.RemoveNetwork(l.cfg.Plan.Management.Network))
	}
	if own.PoolCreated {
		errs = append(errs, l.removePoolIfUnused())
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(l.cfg.StateDir, "vagrant")); err != nil {
		return fmt.Errorf("remove vagrant state: %w", err)
	}
	return nil
}

func (l *Lab) removePoolIfUnused() error {
	doms, err := l.virt.Domains("")
	if err != nil || len(doms) > 0 {
		return err
	}
	vols, err := l.virt.Volumes(Pool, "")
	if err != nil {
		return err
	}
	for _, v := range vols {
		if !strings.Contains(v, boxVolumeMarker) {
			// Someone else's volume: the pool is not ours alone any more.
			return nil
		}
	}
	if _, err := l.virt.RemoveVolumes(Pool, vols...); err != nil {
		return err
	}
	return l.virt.RemovePool(Pool)
}
