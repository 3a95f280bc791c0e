package vagrant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"

	"hybridlab/provision/libvirt"
	"hybridlab/topology"
)

// Pool is the libvirt storage pool vagrant-libvirt keeps volumes in.
const Pool = "default"

// Lab drives the VMs of one lab: their Vagrantfiles, `vagrant up` and
// `vagrant destroy`, the management network and what vagrant-libvirt
// leaves behind. Its methods are safe for concurrent use.
type Lab struct {
	cfg  Config
	virt *libvirt.Conn

	mu     sync.Mutex
	signer ssh.Signer
}

// New returns a Lab for cfg that reaches libvirtd through virt.
func New(cfg Config, virt *libvirt.Conn) *Lab {
	return &Lab{cfg: cfg.withDefaults(), virt: virt}
}

// Config returns the lab's configuration with defaults applied.
func (l *Lab) Config() Config { return l.cfg }

// ownership records which shared libvirt objects this lab created, so
// Teardown removes those and nothing else.
type ownership struct {
	NetworkCreated bool `json:"network_created"`
	PoolCreated    bool `json:"pool_created"`
	// PoolChecked is set once the pool's prior existence was recorded.
	PoolChecked bool `json:"pool_checked"`
}

func (l *Lab) ownershipPath() string {
	return filepath.Join(l.cfg.StateDir, "vagrant", "libvirt.json")
}

func (l *Lab) readOwnership() (ownership, error) {
	var o ownership
	data, err := os.ReadFile(l.ownershipPath())
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("read libvirt ownership: %w", err)
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return o, fmt.Errorf("read libvirt ownership %s: %w", l.ownershipPath(), err)
	}
	return o, nil
}

func (l *Lab) writeOwnership(o ownership) error {
	data, _ := json.MarshalIndent(o, "", "  ")
	if err := os.MkdirAll(filepath.Dir(l.ownershipPath()), 0o755); err != nil {
		return fmt.Errorf("write libvirt ownership: %w", err)
	}
	if err := os.WriteFile(l.ownershipPath(), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write libvirt ownership: %w", err)
	}
	return nil
}

// Prepare readies the host for `vagrant up`: /dev/kvm access as Debian
// sets it (see libvirt.FixKVMAccess), the management network (defined and
// started if missing; see libvirt.EnsureNetwork), a record of whether the
// storage pool existed before, and the TCG QEMU wrapper. It is idempotent.
func (l *Lab) Prepare(ctx context.Context) error {
	if _, err := libvirt.FixKVMAccess(); err != nil {
		return err
	}
	own, err := l.readOwnership()
	if err != nil {
		return err
	}
	created, err := l.virt.EnsureNetwork(ctx, l.cfg.Plan)
	if err != nil {
		return err
	}
	own.NetworkCreated = own.NetworkCreated || created
	if !own.PoolChecked {
		exists, err := l.virt.PoolExists(Pool)
		if err != nil {
			return err
		}
		own.PoolCreated, own.PoolChecked = !exists, true
	}
	if err := l.writeOwnership(own); err != nil {
		return err
	}
	return WriteEmulator(l.cfg)
}

// Write renders node n's Vagrantfile into its VM directory and returns
// the directory.
func (l *Lab) Write(n topology.Node) (string, error) {
	data, err := Render(l.cfg, n)
	if err != nil {
		return "", err
	}
	dir := l.cfg.VMDir(n)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create VM dir for %q: %w", n.Name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), data, 0o644); err != nil {
		return "", fmt.Errorf("write Vagrantfile for %q: %w", n.Name, err)
	}
	return dir, nil
}

// SSH runs cmd as user vagrant (sudo works without a password) on node n
// over the management network and returns its stdout; like `vagrant ssh
// -c CMD` without vagrant's ~2 s start-up.
func (l *Lab) SSH(ctx context.Context, n topology.Node, cmd string) (string, error) {
	addr, err := l.MgmtAddr(n)
	if err != nil {
		return "", err
	}
	signer, err := l.sshSigner()
	if err != nil {
		return "", err
	}
	return runSSH(ctx, addr, signer, cmd)
}

func (l *Lab) sshSigner() (ssh.Signer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.signer == nil {
		s, err := insecureSigner()
		if err != nil {
			return nil, err
		}
		l.signer = s
	}
	return l.signer, nil
}

// ErrNoMgmtAddr means a VM has no lease on the management network (yet).
var ErrNoMgmtAddr = errors.New("no management address")

// MgmtAddr returns node n's address on the management network, from the
// domain's NIC on that network and libvirt's DHCP lease for its MAC.
func (l *Lab) MgmtAddr(n topology.Node) (netip.Addr, error) {
	d, ok, err := l.virt.Domain(n.Object)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok {
		return netip.Addr{}, fmt.Errorf("%w: %q: no domain %q", ErrNoMgmtAddr, n.Name, n.Object)
	}
	mgmt := l.cfg.Plan.Management.Network
	for _, i := range d.Interfaces {
		if i.Network != mgmt {
			continue
		}
		addr, ok, err := l.virt.LeaseAddr(mgmt, i.MAC)
		if err != nil {
			return netip.Addr{}, err
		}
		if ok {
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w: %q on %q", ErrNoMgmtAddr, n.Name, mgmt)
}
