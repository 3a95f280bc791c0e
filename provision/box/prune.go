package box

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"hybridlab/provision/libvirt"
	"hybridlab/provision/vagrant"
)

// Version is one version of the lab's box on the host and where its parts
// are: a build in the cache, a box in VagrantHome, a volume in the pool.
type Version struct {
	Version string `json:"version"`
	// CacheDir is its build in the cache; empty when there is none.
	CacheDir string `json:"cache_dir,omitempty"`
	// VagrantDir is its directory under VagrantHome; empty when none.
	VagrantDir string `json:"vagrant_dir,omitempty"`
	// Volume is the pool volume vagrant-libvirt uploaded it to (at
	// VolumePath); empty when there is none.
	Volume     string `json:"volume,omitempty"`
	VolumePath string `json:"volume_path,omitempty"`
	// Bytes is the disk space its parts take.
	Bytes int64 `json:"bytes"`
	// Why says why a kept version stays.
	Why []string `json:"why,omitempty"`

	// stamp is when it was built or added, to find the newest.
	stamp time.Time
}

// Pruned is what Prune removed (or, with DryRun, would remove) and kept.
type Pruned struct {
	// Current is the version Prune kept as the current one.
	Current string    `json:"current"`
	Removed []Version `json:"removed"`
	Kept    []Version `json:"kept"`
	// Freed is the disk space the removed versions took.
	Freed int64 `json:"freed"`
}

// Virt is the part of libvirt Prune needs; *libvirt.Conn provides it.
type Virt interface {
	PoolVolumes(pool string) ([]libvirt.Volume, error)
	DomainFiles() (map[string][]string, error)
	RemoveVolumes(pool string, names ...string) ([]string, error)
}

// Prune removes every version of the box opts.Name from the host but the
// current one and those still in use: its cache directory, its box in
// VagrantHome (`vagrant box remove NAME --box-version V`) and the volume
// vagrant-libvirt uploaded into opts.Pool (`virsh vol-delete`). The
// current version is the one Build returns for opts' inputs, or, when
// that is not built, the newest build. A version is in use, and stays
// whole, when a volume in the pool has its volume as backing file (a VM
// disk), when a domain of any lab, running or only defined, names one of
// its files (disks, backing chain, the kernel and initrd in VagrantHome),
// or when Vagrant's machine index lists a machine of it whose directory
// exists. Prune holds the cache lock, so it never runs beside Build. It
// needs libvirtd; without it nothing is removed. It carries on past a
// failed removal and returns every error with what it did.
//
// Prune cannot see a lab between its Build and its first VM's disk: a
// lab whose other checkout built another version and is still creating
// its VMs loses that version's box.
func Prune(ctx context.Context, opts Options) (Pruned, error) {
	opts = opts.withDefaults()
	unlock, err := lockCache(opts.CacheDir)
	if err != nil {
		return Pruned{}, err
	}
	defer unlock()
	c, err := loadCustomization(opts.Agent)
	if err != nil {
		return Pruned{}, err
	}
	key, err := inputsKey(c, opts.Agent)
	if err != nil {
		return Pruned{}, err
	}
	return prune(ctx, opts, versionOf(key))
}

// prune is Prune with the cache lock held and the current version known.
func prune(ctx context.Context, o Options, current string) (Pruned, error) {
	virt, done, err := o.virt()
	if err != nil {
		return Pruned{}, err
	}
	defer done()
	vols, err := virt.PoolVolumes(o.Pool)
	if err != nil {
		return Pruned{}, err
	}
	files, err := virt.DomainFiles()
	if err != nil {
		return Pruned{}, err
	}
	machines, err := vagrantMachines(o.VagrantHome, o.Name)
	if err != nil {
		return Pruned{}, err
	}
	current, remove, keep := selectVersions(current, inventory(o, vols), vols, files, machines)
	pr := Pruned{Current: current, Kept: keep}
	var errs []error
	for _, v := range remove {
		if o.DryRun {
			pr.Removed = append(pr.Removed, v)
			pr.Freed += v.Bytes
			continue
		}
		if err := removeVersion(ctx, o, virt, v); err != nil {
			errs = append(errs, err)
			continue
		}
		pr.Removed = append(pr.Removed, v)
		pr.Freed += v.Bytes
	}
	return pr, errors.Join(errs...)
}

// virt returns o.Virt, or a connection to libvirtd and its closer.
func (o Options) virt() (Virt, func(), error) {
	if o.Virt != nil {
		return o.Virt, func() {}, nil
	}
	c, err := libvirt.Dial("")
	if err != nil {
		return nil, nil, fmt.Errorf("prune box %s: %w", o.Name, err)
	}
	return c, func() { c.Close() }, nil
}

// volumePrefix starts the names vagrant-libvirt gives the volumes it
// uploads a box's versions to: NAME_vagrant_box_image_VERSION_box.img.
func volumePrefix(name string) string {
	return vagrantName(name) + "_vagrant_box_image_"
}

const volumeSuffix = "_box.img"

func vagrantName(name string) string {
	return strings.ReplaceAll(name, "/", "-VAGRANTSLASH-")
}

// inventory finds every version of o.Name in the cache, VagrantHome and
// the pool, sorted by version.
func inventory(o Options, vols []libvirt.Volume) []Version {
	byVersion := map[string]*Version{}
	get := func(v string) *Version {
		if byVersion[v] == nil {
			byVersion[v] = &Version{Version: v}
		}
		return byVersion[v]
	}
	dirs, _ := filepath.Glob(filepath.Join(o.CacheDir, "*", recordFile))
	for _, rec := range dirs {
		b, err := readRecord(filepath.Dir(rec))
		if err != nil || b.Name != o.Name || strings.HasSuffix(filepath.Dir(rec), ".work") {
			continue
		}
		v := get(b.Version)
		v.CacheDir = filepath.Dir(rec)
		v.Bytes += diskUse(v.CacheDir)
		v.stamp = later(v.stamp, modTime(rec))
	}
	boxDir := filepath.Join(o.VagrantHome, "boxes", vagrantName(o.Name))
	entries, _ := os.ReadDir(boxDir)
	for _, e := range entries {
		if e.IsDir() {
			v := get(e.Name())
			v.VagrantDir = filepath.Join(boxDir, e.Name())
			v.Bytes += diskUse(v.VagrantDir)
			v.stamp = later(v.stamp, modTime(v.VagrantDir))
		}
	}
	prefix := volumePrefix(o.Name)
	for _, vol := range vols {
		ver, ok := strings.CutPrefix(vol.Name, prefix)
		if ver, ok2 := strings.CutSuffix(ver, volumeSuffix); ok && ok2 && ver != "" {
			v := get(ver)
			v.Volume, v.VolumePath = vol.Name, vol.Path
			v.Bytes += int64(vol.Allocation)
		}
	}
	out := make([]Version, 0, len(byVersion))
	for _, v := range byVersion {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// selectVersions decides which versions found go and which stay (with
// why): the current one, want or else the newest, and those in use.
func selectVersions(want string, found []Version, vols []libvirt.Volume,
	files, machines map[string][]string,
) (current string, remove, keep []Version) {
	current, why := chooseCurrent(want, found)
	remove, keep = choose(found, current, why, usersOf(found, vols, files, machines))
	return current, remove, keep
}

// chooseCurrent returns the version to keep as current, and why: want when
// it is built, else the newest version found.
func chooseCurrent(want string, found []Version) (string, string) {
	var newest *Version
	for i, v := range found {
		if v.Version == want && v.CacheDir != "" {
			return want, "current (the build of the current inputs)"
		}
		if newest == nil || v.stamp.After(newest.stamp) {
			newest = &found[i]
		}
	}
	if newest == nil {
		return want, ""
	}
	return newest.Version, "current (newest build; the current inputs are not built)"
}

// usersOf maps each version to what uses it: volumes backed by its volume,
// domains naming one of its files, Vagrant machines made from it.
func usersOf(found []Version, vols []libvirt.Volume, files map[string][]string,
	machines map[string][]string,
) map[string][]string {
	users := map[string][]string{}
	for _, v := range found {
		for _, vol := range vols {
			if v.Volume != "" && vol.Backing != "" && (vol.Backing == v.VolumePath ||
				filepath.Base(vol.Backing) == v.Volume) {
				users[v.Version] = append(users[v.Version], "backing file of volume "+vol.Name)
			}
		}
		seen := map[string]bool{}
		for f, doms := range files {
			if !v.owns(f) {
				continue
			}
			for _, d := range doms {
				seen[d] = true
			}
		}
		for _, d := range sortedKeys(seen) {
			users[v.Version] = append(users[v.Version], "used by domain "+d)
		}
		for _, m := range machines[v.Version] {
			users[v.Version] = append(users[v.Version], "vagrant machine "+m)
		}
	}
	return users
}

// owns reports whether path is one of v's files.
func (v Version) owns(path string) bool {
	if v.Volume != "" && (path == v.VolumePath || filepath.Base(path) == v.Volume) {
		return true
	}
	for _, dir := range []string{v.CacheDir, v.VagrantDir} {
		if dir != "" && strings.HasPrefix(path, dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// choose splits found into the versions to remove and those to keep (the
// current one and those in use), with the reasons for keeping.
func choose(found []Version, current, why string, users map[string][]string,
) (remove, keep []Version) {
	for _, v := range found {
		if v.Version == current {
			v.Why = append(v.Why, why)
		}
		v.Why = append(v.Why, users[v.Version]...)
		if len(v.Why) > 0 {
			keep = append(keep, v)
			continue
		}
		remove = append(remove, v)
	}
	return remove, keep
}

// removeVersion removes v's volume, its box in Vagrant and its build.
func removeVersion(ctx context.Context, o Options, virt Virt, v Version) error {
	var errs []error
	if v.Volume != "" {
		if _, err := virt.RemoveVolumes(o.Pool, v.Volume); err != nil {
			errs = append(errs, fmt.Errorf("prune box %s %s: %w", o.Name, v.Version, err))
		}
	}
	if v.VagrantDir != "" {
		errs = append(errs, removeFromVagrant(ctx, o, v))
	}
	if v.CacheDir != "" {
		if err := os.RemoveAll(v.CacheDir); err != nil {
			errs = append(errs, fmt.Errorf("prune box %s %s: remove cache dir: %w", o.Name,
				v.Version, err))
		}
	}
	return errors.Join(errs...)
}

// removeFromVagrant runs `vagrant box remove` for v; --force because
// Prune made its own, wider check that nothing uses it. Vagrant leaves the
// emptied version directory behind, and an emptied one needs no vagrant.
func removeFromVagrant(ctx context.Context, o Options, v Version) error {
	if _, err := os.Stat(filepath.Join(v.VagrantDir, "libvirt")); err == nil {
		cmd := exec.CommandContext(ctx, "vagrant", "box", "remove", "--force", o.Name,
			"--box-version", v.Version, "--provider", "libvirt")
		cmd.Env = vagrant.Env(o.VagrantHome)
		cmd.Stdout, cmd.Stderr = o.Progress, o.Progress
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("vagrant box remove %s --box-version %s: %w", o.Name, v.Version,
				err)
		}
	}
	if err := os.RemoveAll(v.VagrantDir); err != nil {
		return fmt.Errorf("prune box %s %s: remove vagrant dir: %w", o.Name, v.Version, err)
	}
	return nil
}

func diskUse(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += allocated(info)
			}
		}
		return nil
	})
	return n
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// allocated is the bytes a file takes on disk (sparse images take less
// than their size).
func allocated(info os.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}
