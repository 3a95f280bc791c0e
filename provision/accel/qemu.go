package accel

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// bootBanner is the first line every Linux kernel prints on its console.
const bootBanner = "Linux version"

// QEMU is the real Prober: it runs
//
//	qemu-system-x86_64 -accel kvm -nographic -no-reboot -m 128 \
//	  -kernel K -append "console=ttyS0 panic=-1"
//
// with no disk and no NIC, and watches the serial console for the kernel's
// banner. The guest is killed as soon as the banner shows or the timeout
// passes; nothing is left running.
type QEMU struct {
	// Binary defaults to qemu-system-x86_64.
	Binary string
}

// Probe implements Prober.
func (q QEMU) Probe(ctx context.Context, kernel string, timeout time.Duration) (
	bool, time.Duration, error) {
	bin := q.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	cmd := exec.Command(bin, "-accel", "kvm", "-cpu", "host", "-nographic", "-nodefaults",
		"-no-reboot", "-serial", "stdio", "-monitor", "none", "-net", "none", "-m", "128",
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, 0, fmt.Errorf("start kvm probe: %w", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return false, 0, fmt.Errorf("start kvm probe: %w", err)
	}
	seen := make(chan bool, 1)
	go func() { seen <- watch(out) }()
	printed, waitErr := wait(ctx, seen, timeout)
	after := time.Since(start)
	// A hung KVM guest ignores everything but SIGKILL.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if printed {
		return true, after, nil
	}
	if waitErr != nil {
		return false, after, waitErr
	}
	if msg := strings.TrimSpace(stderr.String()); msg != "" && after < timeout {
		return false, after, fmt.Errorf("qemu: %s", firstLine(msg))
	}
	return false, after, nil
}

// watch reads the console until the banner shows (true) or it closes.
func watch(r io.Reader) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.Contains(sc.Text(), bootBanner) {
			io.Copy(io.Discard, r)
			return true
		}
	}
	return false
}

func wait(ctx context.Context, seen <-chan bool, timeout time.Duration) (bool, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ok := <-seen:
		return ok, nil
	case <-t.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
