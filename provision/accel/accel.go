// Package accel decides whether lab VMs run under KVM or QEMU's TCG. It
// trusts a real boot, not the presence of /dev/kvm: on some hosts the
// device exists but KVM guests hang before the kernel prints anything.
package accel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Accel is a QEMU accelerator.
type Accel string

// Accelerators the lab knows.
const (
	KVM Accel = "kvm"
	TCG Accel = "tcg"
)

// Driver is the vagrant-libvirt driver (libvirt domain type) for a.
func (a Accel) Driver() string {
	if a == KVM {
		return "kvm"
	}
	return "qemu"
}

// Parse turns "kvm" or "tcg" (any case) into an Accel.
func Parse(s string) (Accel, error) {
	switch Accel(strings.ToLower(strings.TrimSpace(s))) {
	case KVM:
		return KVM, nil
	case TCG:
		return TCG, nil
	}
	return "", fmt.Errorf("accelerator %q: want kvm or tcg", s)
}

// Defaults for Options.
const (
	DefaultCachePath = "/var/lib/hybridlab/cache/accel.json"
	DefaultTimeout   = 12 * time.Second
	bootIDPath       = "/proc/sys/kernel/random/boot_id"
)

// Options control Decide.
type Options struct {
	// Override skips the probe: "kvm" or "tcg". Empty probes.
	Override string
	// Kernel is the guest kernel the probe boots (the box's vmlinuz).
	Kernel string
	// CachePath keeps the answer for the current host boot.
	CachePath string
	// Timeout is how long the probe waits for the guest kernel's first line.
	Timeout time.Duration
	// Prober runs the boot probe; nil uses QEMU.
	Prober Prober
}

// Decision is the accelerator chosen and why.
type Decision struct {
	Accel  Accel  `json:"accel"`
	Reason string `json:"reason"`
	// BootID is the host boot the answer holds for.
	BootID string    `json:"boot_id"`
	At     time.Time `json:"at"`
	// Cached is true when the answer came from CachePath.
	Cached bool `json:"-"`
}

// Prober boots kernel under KVM and reports how long the guest took to
// print its first kernel line, or printed=false when it printed nothing
// within timeout. An error means the probe could not run at all.
type Prober interface {
	Probe(ctx context.Context, kernel string, timeout time.Duration) (
		printed bool, after time.Duration, err error)
}

// ErrNoKernel means no kernel was given for the probe.
var ErrNoKernel = errors.New("no guest kernel for the kvm probe")

// Decide returns the accelerator lab VMs should use. An override wins
// without probing. Otherwise a cached answer for the current host boot is
// reused; failing that, the probe boots Kernel under KVM and the answer is
// cached in CachePath. Decide never errs on a failed probe: a KVM that
// cannot boot a kernel means TCG, and the reason says why.
func Decide(ctx context.Context, o Options) (Decision, error) {
	o = o.withDefaults()
	bootID := readBootID()
	if o.Override != "" {
		a, err := Parse(o.Override)
		if err != nil {
			return Decision{}, err
		}
		return Decision{Accel: a, Reason: string(a) + ": set by --accel", BootID: bootID,
			At: time.Now()}, nil
	}
	if d, ok := readCache(o.CachePath, bootID); ok {
		return d, nil
	}
	d, err := probe(ctx, o)
	if err != nil {
		return Decision{}, err
	}
	d.BootID, d.At = bootID, time.Now().UTC().Truncate(time.Second)
	if err := writeCache(o.CachePath, d); err != nil {
		return d, err
	}
	return d, nil
}

func (o Options) withDefaults() Options {
	if o.CachePath == "" {
		o.CachePath = DefaultCachePath
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Prober == nil {
		o.Prober = QEMU{}
	}
	return o
}

// probe turns the prober's answer into a decision.
func probe(ctx context.Context, o Options) (Decision, error) {
	if _, err := os.Stat(kvmDevice); err != nil {
		return Decision{Accel: TCG, Reason: "tcg: " + kvmDevice + " is missing"}, nil
	}
	if o.Kernel == "" {
		return Decision{}, ErrNoKernel
	}
	printed, after, err := o.Prober.Probe(ctx, o.Kernel, o.Timeout)
	if ctx.Err() != nil {
		return Decision{}, fmt.Errorf("probe kvm: %w", ctx.Err())
	}
	switch {
	case err != nil:
		return Decision{Accel: TCG, Reason: fmt.Sprintf("tcg: kvm probe failed: %v", err)}, nil
	case !printed:
		return Decision{Accel: TCG, Reason: fmt.Sprintf("tcg: kvm guest printed nothing in %s",
			o.Timeout.Round(time.Second))}, nil
	}
	return Decision{Accel: KVM, Reason: fmt.Sprintf("kvm: guest kernel printed in %.1f s",
		after.Seconds())}, nil
}

func readBootID() string {
	data, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// Cached returns the boot probe's answer for the current host boot from
// DefaultCachePath, without probing; false when there is none.
func Cached() (Decision, bool) { return readCache(DefaultCachePath, readBootID()) }

func readCache(path, bootID string) (Decision, bool) {
	data, err := os.ReadFile(path)
	if err != nil || bootID == "" {
		return Decision{}, false
	}
	var d Decision
	if json.Unmarshal(data, &d) != nil || d.BootID != bootID {
		return Decision{}, false
	}
	if _, err := Parse(string(d.Accel)); err != nil {
		return Decision{}, false
	}
	d.Cached = true
	return d, true
}

func writeCache(path string, d Decision) error {
	if d.BootID == "" {
		return nil
	}
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write accel cache: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write accel cache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write accel cache: %w", err)
	}
	return nil
}

// kvmDevice is a variable so tests can point it elsewhere.
var kvmDevice = "/dev/kvm"
