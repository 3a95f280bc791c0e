package libvirt

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// lockTestLab serialises tests of every package that use the hlv test
// lab's libvirt names, since `go test ./...` runs packages in parallel.
func lockTestLab(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll("/var/lib/hybridlab", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile("/var/lib/hybridlab/hlv.testlock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

func dialTest(t *testing.T) *Conn {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("libvirt tests need root")
	}
	if _, err := os.Stat(DefaultSocket); err != nil {
		t.Skipf("libvirt tests need libvirtd: %v", err)
	}
	lockTestLab(t)
	c, err := Dial("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEnsureNetwork(t *testing.T) {
	c := dialTest(t)
	p := testPlan(t)
	name := p.Management.Network
	t.Cleanup(func() {
		if err := c.RemoveNetwork(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx := context.Background()
	created, err := c.EnsureNetwork(ctx, p)
	if err != nil || !created {
		t.Fatalf("first EnsureNetwork: created %v, err %v", created, err)
	}
	created, err = c.EnsureNetwork(ctx, p)
	if err != nil || created {
		t.Fatalf("second EnsureNetwork: created %v, err %v; want an idempotent no-op", created, err)
	}
	out, err := exec.Command("ip", "-br", "addr", "show", p.Management.Bridge).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.0.8.1/24") {
		t.Errorf("bridge %s: %s %v", p.Management.Bridge, out, err)
	}
	stp, _ := os.ReadFile("/sys/class/net/" + p.Management.Bridge + "/bridge/stp_state")
	if strings.TrimSpace(string(stp)) != "0" {
		t.Errorf("stp_state of %s = %q, want 0 (fault B18)", p.Management.Bridge, stp)
	}

	drifted := *p
	drifted.Management.Bridge = "virbr-other"
	if _, err := c.EnsureNetwork(ctx, &drifted); !errors.Is(err, ErrDrift) {
		t.Errorf("plan with another bridge: err %v, want ErrDrift", err)
	}

	if err := c.RemoveNetwork(name); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNetwork(name); err != nil {
		t.Errorf("removing an absent network: %v", err)
	}
}

func TestEnsureNetworkRefusesOverlap(t *testing.T) {
	c := dialTest(t)
	p := testPlan(t)
	const holder = "hlv-dummy0"
	_ = exec.Command("ip", "link", "del", holder).Run()
	// A bridge: the dummy driver may be missing, bridges are built in.
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ip("link", "add", holder, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", holder).Run() })
	ip("addr", "add", "10.0.8.200/25", "dev", holder)
	ip("link", "set", holder, "up")
	created, err := c.EnsureNetwork(context.Background(), p)
	if created {
		_ = c.RemoveNetwork(p.Management.Network)
	}
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), holder) {
		t.Errorf("EnsureNetwork with %s holding 10.0.8.128/25: %v; want ErrOverlap naming it",
			holder, err)
	}
}
