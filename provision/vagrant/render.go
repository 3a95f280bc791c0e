package vagrant

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"hybridlab/provision/accel"
	"hybridlab/provision/libvirt"
	"hybridlab/templates"
	"hybridlab/topology"
)

// Defaults for Config.
const (
	DefaultBootTimeout = 600 * time.Second
	// DefaultTBSizeMiB bounds QEMU's TCG translation cache. QEMU's default
	// of 1 GiB makes a 512 MB guest use ~1.4 GB of host memory.
	DefaultTBSizeMiB = 128
	// KernelCmdline is the VMs' kernel command line. The box boots the
	// same root; apparmor=0 because the Debian kernel enables AppArmor while
	// the box has no apparmor_parser, and dockerd refuses to run containers
	// in that state.
	KernelCmdline = "root=/dev/vda rw console=ttyS0 apparmor=0"
	// DefaultCacheDir is the cache shared by every lab on the host.
	DefaultCacheDir = "/var/lib/hybridlab/cache"
)

// Config is what every VM of a lab shares.
type Config struct {
	Plan  *topology.Plan
	Accel accel.Accel
	// Box and BoxVersion name the Vagrant box (see package box).
	Box        string
	BoxVersion string
	// StateDir is the lab's state directory, /var/lib/hybridlab/<lab>.
	StateDir string
	// CacheDir is shared by all labs (DefaultCacheDir when empty); the
	// TCG QEMU wrapper lives there.
	CacheDir    string
	VagrantHome string
	// IPv6 is whether the host kernel has IPv6 (see HostIPv6).
	IPv6        bool
	BootTimeout time.Duration
	// TBSizeMiB is the TCG translation cache size; 0 means
	// DefaultTBSizeMiB, a negative value keeps QEMU's default.
	TBSizeMiB int
}

func (c Config) withDefaults() Config {
	if c.VagrantHome == "" {
		c.VagrantHome = DefaultHome
	}
	if c.CacheDir == "" {
		c.CacheDir = DefaultCacheDir
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = DefaultBootTimeout
	}
	if c.TBSizeMiB == 0 {
		c.TBSizeMiB = DefaultTBSizeMiB
	}
	return c
}

// vagrantfileData fills the templates.
type vagrantfileData struct {
	Lab, Node, Role, Object string
	Description             string
	Box, BoxVersion         string
	BootTimeout             int
	Bridge, MAC             string
	Driver                  string
	TCG                     bool
	Memory, CPUs            int
	Emulator                string
	TBSizeMiB               int
	MgmtNetwork, MgmtSubnet string
	IPv6                    bool
	SerialLog, CmdLine      string
}

// VMDir is the directory holding a node's Vagrantfile and Vagrant's
// .vagrant state.
func (c Config) VMDir(n topology.Node) string {
	return filepath.Join(c.StateDir, "vagrant", n.Name)
}

// SerialLog is the file the node's serial console is written to.
func (c Config) SerialLog(n topology.Node) string {
	return filepath.Join(c.StateDir, "vagrant", n.Name+"-serial.log")
}

// EmulatorPath is the QEMU wrapper Render points TCG VMs at, or "" when
// VMs use QEMU as it is. It is shared by every lab with the same cache
// size: libvirtd probes each new emulator binary (seconds) and caches the
// answer until the file changes.
func (c Config) EmulatorPath() string {
	c = c.withDefaults()
	if c.Accel != accel.TCG || c.TBSizeMiB < 0 {
		return ""
	}
	return filepath.Join(c.CacheDir, fmt.Sprintf("qemu-tcg-tb%d", c.TBSizeMiB))
}

// Render returns the Vagrantfile for node n: the role's template
// (templates/Vagrantfile.hybrid-ROLE, falling back to hybrid-base)
// filled from the plan, the node and the accelerator.
func Render(c Config, n topology.Node) ([]byte, error) {
	c = c.withDefaults()
	t, err := roleTemplate(n.Role)
	if err != nil {
		return nil, err
	}
	d := vagrantfileData{
		Lab: c.Plan.Lab, Node: n.Name, Role: n.Role, Object: n.Object,
		Description: libvirt.Mark(c.Plan.Lab),
		Box:         c.Box, BoxVersion: c.BoxVersion, BootTimeout: int(c.BootTimeout.Seconds()),
		Bridge: c.Plan.SegmentOf(n).Bridge.Name, MAC: n.MAC,
		Driver: c.Accel.Driver(), TCG: c.Accel != accel.KVM,
		Memory: n.Memory, CPUs: n.CPUs,
		Emulator: c.EmulatorPath(), TBSizeMiB: c.TBSizeMiB,
		MgmtNetwork: c.Plan.Management.Network, MgmtSubnet: c.Plan.Management.Subnet.String(),
		IPv6: c.IPv6, SerialLog: c.SerialLog(n),
		// The hostname is set on the kernel command line rather than by
		// config.vm.hostname, whose guest step restarts systemd-networkd
		// over SSH and costs a few seconds under TCG.
		CmdLine: KernelCmdline + " systemd.hostname=" + n.Name,
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render Vagrantfile for %q: %w", n.Name, err)
	}
	return b.Bytes(), nil
}

const baseTemplate = "Vagrantfile.hybrid-base"

func roleTemplate(role string) (*template.Template, error) {
	base, err := template.ParseFS(templates.FS, baseTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", baseTemplate, err)
	}
	name := "Vagrantfile.hybrid-" + role
	data, err := templates.FS.ReadFile(name)
	if err != nil || role == topology.RoleBase {
		return base, nil
	}
	if _, err := base.New(name).Parse(string(data)); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return base.Lookup(baseTemplate), nil
}

// emulatorScript rewrites libvirt's `-accel tcg` into `-accel
// tcg,tb-size=N`: vagrant-libvirt has no setting for the translation
// cache, but it lets a domain name its emulator binary.
const emulatorScript = `#!/bin/sh
# Rendered by hybridlab: QEMU with a %d MiB TCG translation cache.
prev=
for arg do
	shift
	if [ "$prev" = -accel ] && [ "$arg" = tcg ]; then
		arg=tcg,tb-size=%d
	fi
	set -- "$@" "$arg"
	prev=$arg
done
exec %s "$@"
`

// qemuBinary is the emulator the wrapper runs.
const qemuBinary = "/usr/bin/qemu-system-x86_64"

// WriteEmulator writes the TCG wrapper at EmulatorPath (nothing when that
// is ""). An identical file is left untouched, so libvirtd's cached probe
// of it stays valid. QEMU runs as libvirt-qemu: the script is
// world-readable.
func WriteEmulator(c Config) error {
	c = c.withDefaults()
	path := c.EmulatorPath()
	if path == "" {
		return nil
	}
	script := fmt.Sprintf(emulatorScript, c.TBSizeMiB, c.TBSizeMiB, qemuBinary)
	if old, err := os.ReadFile(path); err == nil && string(old) == script {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write qemu wrapper: %w", err)
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		return fmt.Errorf("write qemu wrapper: %w", err)
	}
	return nil
}

// HostIPv6 reports whether the host kernel has IPv6 enabled (fault B05:
// libvirt fails to start guest networks with IPv6 on a host without it).
func HostIPv6() bool {
	data, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	return err == nil && strings.TrimSpace(string(data)) == "0"
}
