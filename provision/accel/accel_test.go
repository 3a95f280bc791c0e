package accel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type fakeProber struct {
	printed bool
	after   time.Duration
	err     error
	calls   int
}

func (f *fakeProber) Probe(context.Context, string, time.Duration) (bool, time.Duration, error) {
	f.calls++
	return f.printed, f.after, f.err
}

func withKVMDevice(t *testing.T, exists bool) {
	t.Helper()
	old := kvmDevice
	kvmDevice = filepath.Join(t.TempDir(), "kvm")
	if exists {
		os.WriteFile(kvmDevice, nil, 0o600)
	}
	t.Cleanup(func() { kvmDevice = old })
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name       string
		device     bool
		prober     fakeProber
		want       Accel
		wantReason string
	}{
		{"guest prints", true, fakeProber{printed: true, after: 1200 * time.Millisecond}, KVM,
			"kvm: guest kernel printed in 1.2 s"},
		{"guest silent", true, fakeProber{after: 10 * time.Second}, TCG,
			"tcg: kvm guest printed nothing in 10s"},
		{"qemu fails", true, fakeProber{err: errors.New("qemu: Could not access KVM")}, TCG,
			"tcg: kvm probe failed: qemu: Could not access KVM"},
		{"no device", false, fakeProber{printed: true}, TCG, "tcg: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withKVMDevice(t, tt.device)
			p := tt.prober
			d, err := Decide(context.Background(), Options{Kernel: "/k", Prober: &p,
				Timeout: 10 * time.Second, CachePath: filepath.Join(t.TempDir(), "a.json")})
			if err != nil {
				t.Fatal(err)
			}
			if d.Accel != tt.want || !strings.HasPrefix(d.Reason, tt.wantReason) {
				t.Errorf("Decide = %s %q, want %s %q", d.Accel, d.Reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestDecideOverrideSkipsProbe(t *testing.T) {
	withKVMDevice(t, true)
	p := &fakeProber{printed: true}
	d, err := Decide(context.Background(), Options{Override: "TCG", Prober: p,
		CachePath: filepath.Join(t.TempDir(), "a.json")})
	if err != nil {
		t.Fatal(err)
	}
	if d.Accel != TCG || p.calls != 0 {
		t.Errorf("override: accel %s, probe calls %d", d.Accel, p.calls)
	}
	if _, err := Decide(context.Background(), Options{Override: "hvf"}); err == nil {
		t.Error("override hvf: no error")
	}
}

func TestDecideCachesPerBoot(t *testing.T) {
	if readBootID() == "" {
		t.Skip("no " + bootIDPath)
	}
	withKVMDevice(t, true)
	cache := filepath.Join(t.TempDir(), "accel.json")
	p := &fakeProber{after: 10 * time.Second}
	first, err := Decide(context.Background(), Options{Kernel: "/k", Prober: p, CachePath: cache})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Decide(context.Background(), Options{Kernel: "/k", Prober: p, CachePath: cache})
	if err != nil {
		t.Fatal(err)
	}
	if p.calls != 1 || !second.Cached || second.Accel != first.Accel {
		t.Errorf("second Decide: calls %d, cached %v, accel %s", p.calls, second.Cached,
			second.Accel)
	}
	// An answer from another boot is stale.
	stale := first
	stale.BootID = "another-boot"
	if err := writeCache(cache, stale); err != nil {
		t.Fatal(err)
	}
	if _, err := Decide(context.Background(), Options{Kernel: "/k", Prober: p,
		CachePath: cache}); err != nil {
		t.Fatal(err)
	}
	if p.calls != 2 {
		t.Errorf("stale cache reused: probe calls %d", p.calls)
	}
}

func TestDecideNeedsKernel(t *testing.T) {
	withKVMDevice(t, true)
	_, err := Decide(context.Background(), Options{Prober: &fakeProber{},
		CachePath: filepath.Join(t.TempDir(), "a.json")})
	if !errors.Is(err, ErrNoKernel) {
		t.Errorf("err = %v, want ErrNoKernel", err)
	}
}

func TestDriver(t *testing.T) {
	if KVM.Driver() != "kvm" || TCG.Driver() != "qemu" {
		t.Errorf("drivers: %s %s", KVM.Driver(), TCG.Driver())
	}
}

// TestProbeRealHost runs the QEMU probe on this host with the box kernel
// (HYBRIDLAB_KERNEL, or the cached box's vmlinuz) and checks a decision is
// made and cached for this boot.
func TestProbeRealHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the kvm probe needs root for /dev/kvm")
	}
	kernel := os.Getenv("HYBRIDLAB_KERNEL")
	if kernel == "" {
		found, _ := filepath.Glob("/var/lib/hybridlab/cache/boxes/*/vmlinuz")
		if len(found) == 0 {
			t.Skip("no guest kernel: build the box first or set HYBRIDLAB_KERNEL")
		}
		kernel = found[0]
	}
	cache := filepath.Join(t.TempDir(), "accel.json")
	start := time.Now()
	d, err := Decide(context.Background(), Options{Kernel: kernel, CachePath: cache})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("decision %s (%s) in %s", d.Accel, d.Reason, time.Since(start).Round(time.Millisecond))
	if d.Accel != KVM && d.Accel != TCG {
		t.Fatalf("no decision: %+v", d)
	}
	again, err := Decide(context.Background(), Options{Kernel: kernel, CachePath: cache})
	if err != nil || !again.Cached || again.Accel != d.Accel {
		t.Errorf("cached decision: %+v, %v", again, err)
	}
}
