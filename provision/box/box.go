// Package box builds the lab's Vagrant box offline from Debian packages
// (mmdebstrap, mke2fs -d, qemu-img) and adds it to Vagrant. One box serves
// every VM role; builds are cached by a hash of their inputs.
package box

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"hybridlab/provision/vagrant"
)

// Defaults for Options.
const (
	DefaultName     = "hybridlab/debian12"
	DefaultCacheDir = "/var/lib/hybridlab/cache/boxes"
	// DiskGiB is the guest disk's virtual size; the image is sparse.
	DiskGiB = 8
)

// vagrantKeyGlob finds the public half of Vagrant's insecure key, shipped
// with the vagrant package.
const vagrantKeyGlob = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub"

// Options control Build. The zero value builds DefaultName into
// DefaultCacheDir with no agent.
type Options struct {
	// Name is the Vagrant box name.
	Name string
	// CacheDir keeps one directory per input hash.
	CacheDir string
	// VagrantHome is where the box is added (vagrant.DefaultHome if empty).
	VagrantHome string
	// Agent is the probe binary to install at /usr/local/bin/probe, with
	// hybridlab-probe.service enabled; "" installs neither binary nor
	// enabled unit.
	Agent string
	// Rebuild ignores a cached box with the same inputs.
	Rebuild bool
	// KeepOld stops Build from pruning the other versions (see Prune)
	// after it built a new one.
	KeepOld bool
	// Pool is the libvirt storage pool vagrant-libvirt uploads the box to
	// (vagrant.Pool if empty).
	Pool string
	// Virt reaches libvirt for Prune; nil dials libvirtd's socket.
	Virt Virt
	// DryRun makes Prune report what it would remove, removing nothing.
	DryRun bool
	// Progress receives a person-readable line per step and the output of
	// the long-running tools. Nil discards it.
	Progress io.Writer
}

// Box is a built box, as recorded in its cache directory.
type Box struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Key is the hash of every input; the cache directory is named after it.
	Key string `json:"key"`
	// Dir is the cache directory holding File, Kernel and Initrd.
	Dir    string `json:"dir"`
	File   string `json:"file"`
	Kernel string `json:"kernel"`
	Initrd string `json:"initrd"`
	// Size is the size of File in bytes.
	Size int64 `json:"size"`
	// BuildTime is how long the build took when it ran.
	BuildTime time.Duration `json:"build_time"`
	// Cached is true when Build found the box already built.
	Cached bool `json:"-"`
	// Pruned is what Build's prune after a new build removed and kept;
	// PruneErr is why that prune failed. A failed prune fails no build.
	Pruned   *Pruned `json:"-"`
	PruneErr error   `json:"-"`
}

// ErrNoVagrantKey means the vagrant package's insecure key is missing.
var ErrNoVagrantKey = errors.New("vagrant insecure key not found")

// Build returns the box for the current inputs, building it when the cache
// has none (or Rebuild is set), and makes sure Vagrant has it under
// VagrantHome. It is idempotent: a second call with the same inputs only
// checks the cache and Vagrant's box list. It needs root (mmdebstrap
// --mode=root, chroot) and network access to the Debian mirror when it
// builds. Nothing is left behind but the cache directory and the box in
// VagrantHome. After building a new version it prunes the others that
// nothing uses (see Prune) unless KeepOld is set, and reports that in the
// Box's Pruned and PruneErr.
func Build(ctx context.Context, opts Options) (*Box, error) {
	opts = opts.withDefaults()
	c, err := loadCustomization(opts.Agent)
	if err != nil {
		return nil, err
	}
	key, err := inputsKey(c, opts.Agent)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.CacheDir, key[:16])
	unlock, err := lockCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	b, err := readRecord(dir)
	if err != nil || opts.Rebuild {
		b, err = build(ctx, opts, c, key, dir)
		if err != nil {
			return nil, err
		}
	} else {
		b.Cached = true
		progress(opts.Progress, "box %s %s: cached in %s", b.Name, b.Version, dir)
	}
	if err := add(ctx, opts, b); err != nil {
		return nil, err
	}
	if !b.Cached && !opts.KeepOld {
		pruneAfterBuild(ctx, opts, b)
	}
	return b, nil
}

// pruneAfterBuild prunes the versions other than b's, with the cache lock
// Build holds, and records the outcome in b.
func pruneAfterBuild(ctx context.Context, opts Options, b *Box) {
	pr, err := prune(ctx, opts, b.Version)
	b.Pruned, b.PruneErr = &pr, err
	for _, v := range pr.Removed {
		progress(opts.Progress, "box %s %s: pruned (%d MB)", b.Name, v.Version, v.Bytes>>20)
	}
	for _, v := range pr.Kept {
		if v.Version != b.Version {
			progress(opts.Progress, "box %s %s: kept: %s", b.Name, v.Version,
				strings.Join(v.Why, "; "))
		}
	}
	if err != nil {
		progress(opts.Progress, "box %s: prune: %v", b.Name, err)
	}
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.VagrantHome == "" {
		o.VagrantHome = vagrant.DefaultHome
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Pool == "" {
		o.Pool = vagrant.Pool
	}
	return o
}

func loadCustomization(agent string) (*customization, error) {
	keys, _ := filepath.Glob(vagrantKeyGlob)
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoVagrantKey, vagrantKeyGlob)
	}
	pub, err := os.ReadFile(keys[len(keys)-1])
	if err != nil {
		return nil, fmt.Errorf("read vagrant insecure key: %w", err)
	}
	return newCustomization(pub, agent)
}

const recordFile = "box.json"

func readRecord(dir string) (*Box, error) {
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return nil, err
	}
	var b Box
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("read box record in %s: %w", dir, err)
	}
	if _, err := os.Stat(b.File); err != nil {
		return nil, fmt.Errorf("box record in %s: %w", dir, err)
	}
	return &b, nil
}

func writeRecord(b *Box) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.Dir, recordFile), append(data, '\n'), 0o644)
}

// lockCache serialises builds and box adds of every process on the host
// (two labs coming up at once build the box once).
func lockCache(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create box cache %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock box cache: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock box cache: %w", err)
	}
	return func() { f.Close() }, nil
}

func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}
