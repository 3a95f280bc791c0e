package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"hybridlab/provision/vagrant"
)

// Prune removes every other build of keep's box: its cache directories
// and, like `vagrant box remove NAME --box-version V`, its other versions
// in VagrantHome. Volumes that vagrant-libvirt uploaded into a storage
// pool are not touched. It returns the versions removed from Vagrant.
// The cache and VagrantHome are shared by every lab on the host: a VM of
// another lab built from an older version keeps running (QEMU loaded its
// kernel at start) but cannot start again, so call Prune only when no
// other lab is up.
func Prune(ctx context.Context, opts Options, keep *Box) ([]string, error) {
	opts = opts.withDefaults()
	var errs []error
	dirs, _ := filepath.Glob(filepath.Join(opts.CacheDir, "*"))
	for _, d := range dirs {
		if d != keep.Dir && !strings.HasSuffix(d, ".work") {
			if b, err := readRecord(d); err == nil && b.Name == keep.Name {
				errs = append(errs, os.RemoveAll(d))
			}
		}
	}
	boxDir := filepath.Join(opts.VagrantHome, "boxes",
		strings.ReplaceAll(keep.Name, "/", "-VAGRANTSLASH-"))
	versions, _ := os.ReadDir(boxDir)
	var removed []string
	for _, v := range versions {
		if !v.IsDir() || v.Name() == keep.Version {
			continue
		}
		// vagrant box remove leaves the emptied version directory behind.
		if _, err := os.Stat(filepath.Join(boxDir, v.Name(), "libvirt")); err != nil {
			_ = os.Remove(filepath.Join(boxDir, v.Name()))
			continue
		}
		cmd := exec.CommandContext(ctx, "vagrant", "box", "remove", "--force", keep.Name,
			"--box-version", v.Name(), "--provider", "libvirt")
		cmd.Env = vagrant.Env(opts.VagrantHome)
		cmd.Stdout, cmd.Stderr = opts.Progress, opts.Progress
		if err := cmd.Run(); err != nil {
			errs = append(errs, fmt.Errorf("vagrant box remove %s %s: %w", keep.Name, v.Name(), err))
			continue
		}
		_ = os.Remove(filepath.Join(boxDir, v.Name()))
		removed = append(removed, v.Name())
	}
	return removed, errors.Join(errs...)
}
