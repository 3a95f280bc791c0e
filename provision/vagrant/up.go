package vagrant

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"hybridlab/topology"
)

// LineFunc receives one line of a VM's vagrant output.
type LineFunc func(node, line string)

// LeaseCheck reports whether the lab's DHCP server has leased n.IP to
// n.MAC. The DHCP server belongs to another package; Up only asks.
type LeaseCheck func(ctx context.Context, n topology.Node) (bool, error)

// DefaultReadyTimeout bounds the wait for a VM's lab address after
// `vagrant up` returned.
const DefaultReadyTimeout = 2 * time.Minute

// UpOptions control Up.
type UpOptions struct {
	// Parallel is how many `vagrant up` run at once; 0 means one per CPU
	// core. Measured on 2 cores under TCG: two VMs up and ready in 39 s in
	// parallel against 80 s one after the other (a boot is ~35 s of mostly
	// one core, and vagrant's own polling overlaps).
	Parallel int
	// Output receives vagrant's output, line by line; nil discards it.
	Output LineFunc
	// Lease, when set, must confirm the planned lease before a VM counts
	// as ready.
	Lease        LeaseCheck
	ReadyTimeout time.Duration
}

// Up prepares the host (see Prepare), writes each node's Vagrantfile and
// runs `vagrant up --provider=libvirt` for them, then waits until each is
// ready (see Ready). With Parallel > 1 the first VM boots alone while the
// box is not yet in the storage pool: concurrent first runs of
// vagrant-libvirt would race to upload it. Up is idempotent (`vagrant up`
// of a running VM only re-checks it) and returns the first error; VMs
// already up stay up.
func (l *Lab) Up(ctx context.Context, nodes []topology.Node, o UpOptions) error {
	if err := l.Prepare(ctx); err != nil {
		return err
	}
	for _, n := range nodes {
		if _, err := l.Write(n); err != nil {
			return err
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	rest := nodes
	if !l.boxInPool() {
		// vagrant-libvirt uploads the box into the pool on a VM's first
		// `vagrant up`; a second one started meanwhile, in this lab or
		// another, builds its disk on the half-written volume and the guest
		// cannot mount its root. The first VM boots alone, under a host-wide
		// lock, and whoever waited finds the box in the pool.
		unlock, err := lockBoxUpload(l.cfg.CacheDir)
		if err != nil {
			return err
		}
		if !l.boxInPool() {
			err = l.upOne(ctx, nodes[0], o)
			rest = nodes[1:]
		}
		unlock()
		if err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	for _, n := range rest {
		g.Go(func() error { return l.upOne(gctx, n, o) })
	}
	return g.Wait()
}

// boxInPool reports whether vagrant-libvirt already uploaded the box's
// image into the pool (it names the volume after box and version).
func (l *Lab) boxInPool() bool {
	name := strings.ReplaceAll(l.cfg.Box, "/", "-VAGRANTSLASH-") + boxVolumeMarker +
		l.cfg.BoxVersion + "_"
	vols, err := l.virt.Volumes(Pool, name)
	return err == nil && len(vols) > 0
}

func (l *Lab) upOne(ctx context.Context, n topology.Node, o UpOptions) error {
	start := time.Now()
	if err := l.vagrant(ctx, n, o.Output, "up", "--provider=libvirt"); err != nil {
		return err
	}
	say(o.Output, n, "hybridlab: vagrant up done in %.1f s; waiting for %s on %s",
		time.Since(start).Seconds(), n.IP, n.MAC)
	timeout := o.ReadyTimeout
	if timeout == 0 {
		timeout = DefaultReadyTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := l.Ready(rctx, n, o.Lease); err != nil {
		return err
	}
	say(o.Output, n, "hybridlab: ready in %.1f s", time.Since(start).Seconds())
	return nil
}

func say(out LineFunc, n topology.Node, format string, args ...any) {
	if out != nil {
		out(n.Name, fmt.Sprintf(format, args...))
	}
}

// ErrNotReady wraps the last reason a VM was not ready when ctx ended.
var ErrNotReady = errors.New("vm not ready")

// readyPoll is how often Ready looks again.
const readyPoll = time.Second

// Ready waits until node n is usable: the lease check (when given) sees
// its planned lease, and the guest's NIC with the planned MAC holds the
// planned address (read over SSH). It returns ErrNotReady with the last
// reason when ctx ends first.
func (l *Lab) Ready(ctx context.Context, n topology.Node, lease LeaseCheck) error {
	var last error
	for {
		last = l.readyOnce(ctx, n, lease)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %q: %v", ErrNotReady, n.Name, last)
		case <-time.After(readyPoll):
		}
	}
}

func (l *Lab) readyOnce(ctx context.Context, n topology.Node, lease LeaseCheck) error {
	if lease != nil {
		ok, err := lease(ctx, n)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no lease of %s for %s yet", n.IP, n.MAC)
		}
	}
	got, err := l.LabAddr(ctx, n)
	if err != nil {
		return err
	}
	if got != n.IP {
		return fmt.Errorf("lab NIC %s has %v, want %s", n.MAC, got, n.IP)
	}
	return nil
}

// LabAddr reads, over SSH, the IPv4 address the guest holds on its NIC
// with the planned MAC (`ip -o link` + `ip -4 -o addr`). An invalid Addr
// means the NIC has no address yet.
func (l *Lab) LabAddr(ctx context.Context, n topology.Node) (netip.Addr, error) {
	out, err := l.SSH(ctx, n, "ip -o link show; echo --; ip -4 -o addr show")
	if err != nil {
		return netip.Addr{}, err
	}
	return parseLabAddr(out, n.MAC)
}

// parseLabAddr finds the interface whose link/ether is mac in `ip -o
// link` output, then its first address in `ip -4 -o addr` output (the two
// separated by a "--" line).
func parseLabAddr(out, mac string) (netip.Addr, error) {
	links, addrs, _ := strings.Cut(out, "\n--\n")
	ifname := ""
	for _, line := range strings.Split(links, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "link/ether" && strings.EqualFold(f[i+1], mac) && len(f) > 1 {
				ifname = strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":")
			}
		}
	}
	if ifname == "" {
		return netip.Addr{}, fmt.Errorf("guest has no NIC with MAC %s", mac)
	}
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == ifname && f[2] == "inet" {
			p, err := netip.ParsePrefix(f[3])
			if err != nil {
				return netip.Addr{}, fmt.Errorf("parse guest address %q: %w", f[3], err)
			}
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, nil
}

// vagrant runs `vagrant ARGS…` in node n's directory with the lab's
// environment, streaming its output line by line.
func (l *Lab) vagrant(ctx context.Context, n topology.Node, out LineFunc, args ...string) error {
	cmd := exec.CommandContext(ctx, "vagrant", args...)
	// vagrant dies with setup: a `setup up` killed with SIGKILL must not
	// leave a `vagrant up` behind that holds the machine's lock against the
	// next `up`. It gets SIGTERM, on which it cleans up after itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Dir = l.cfg.VMDir(n)
	cmd.Env = Env(l.cfg.VagrantHome)
	w := newLineWriter(n.Name, out)
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	w.Close()
	if err != nil {
		return fmt.Errorf("vagrant %s %q: %w%s", args[0], n.Name, err, w.tail())
	}
	return nil
}

// lineWriter splits output into lines for a LineFunc and keeps the last
// few for error messages.
type lineWriter struct {
	mu   sync.Mutex
	pw   *io.PipeWriter
	done chan struct{}
	last []string
}

func newLineWriter(node string, out LineFunc) *lineWriter {
	pr, pw := io.Pipe()
	w := &lineWriter{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			w.mu.Lock()
			w.last = append(w.last, line)
			if len(w.last) > 5 {
				w.last = w.last[1:]
			}
			w.mu.Unlock()
			if out != nil {
				out(node, line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) { return w.pw.Write(p) }

func (w *lineWriter) Close() {
	w.pw.Close()
	<-w.done
}

func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.last) == 0 {
		return ""
	}
	return ": " + strings.Join(w.last, " | ")
}

// lockBoxUpload takes the host-wide lock that serialises box uploads into
// the storage pool; the kernel drops it if the holder dies.
func lockBoxUpload(cacheDir string) (func(), error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("lock box upload: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(cacheDir, "box-upload.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock box upload: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock box upload: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
