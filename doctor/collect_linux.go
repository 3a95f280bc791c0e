package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"hybridlab/topology"
)

// DefaultStateDir holds each lab's run-time state (pid files, leases).
const DefaultStateDir = "/var/lib/hybridlab"

// Options steer Collect. The zero value collects everything from the host.
type Options struct {
	// Phase says whether the lab is expected to be up (default PhaseBefore).
	Phase Phase
	// Accel is the accelerator decision, reported as is.
	Accel Accel
	// WantIPv6 makes a host without IPv6 an error instead of a note.
	WantIPv6 bool
	// Baseline is the lab bridge as recorded by `up`, for BRIDGE_CHANGED.
	Baseline *Bridge
	// Baselines are more lab bridges as recorded by `up` (every segment's
	// bridge of a routed lab), for BRIDGE_CHANGED.
	Baselines []Bridge
	// StateDir defaults to DefaultStateDir.
	StateDir string
	// LeaseFile defaults to STATEDIR/LAB/dnsmasq.leases.
	LeaseFile string
	// Docker, when set, is used instead of asking the Docker daemon.
	Docker *Docker
	// NoDocker skips Docker entirely (not reported as a failed source).
	NoDocker bool
	// Libvirt, when set, is used instead of asking libvirtd.
	Libvirt []LibvirtNetwork
	// NoLibvirt skips libvirt entirely (not reported as a failed source).
	NoLibvirt bool
	// LibvirtURI defaults to qemu:///system.
	LibvirtURI string
}

// source is one independent part of the snapshot.
type source struct {
	name string
	read func(ctx context.Context, plan *topology.Plan, o *Options, s *HostState) error
}

var sources = []source{
	{"ipv6", readIPv6},
	{"iptables", readIptables},
	{"iptables nat", readIptablesNAT},
	{"ip6tables", readIP6tables},
	{"iptables-legacy", readLegacy},
	{"br_netfilter", readBrNF},
	{"ip_forward", readIPForward},
	{"nftables", readNFT},
	{"netlink", readNetlink},
	{"docker", readDocker},
	{"libvirt", readLibvirt},
	{"listeners", readListeners},
	{"pid files", readPidFiles},
	{"leases", readLeases},
}

// Collect snapshots the host for plan. It only reads. Every source is read
// on the calling goroutine, so netns-bound sources (iptables, nftables,
// netlink, sysctls, /proc/thread-self/net) see the network namespace of
// the calling OS thread: lock the thread and enter a namespace to check it.
// Docker, libvirt, pid files and leases are host-wide. A source that fails
// is recorded in HostState.Errors and the others are still read; the error
// is non-nil only when ctx ends.
func Collect(ctx context.Context, plan *topology.Plan, opts Options) (*HostState, error) {
	o := opts.withDefaults(plan)
	s := &HostState{
		Accel: o.Accel, WantIPv6: o.WantIPv6, Phase: o.Phase, Baseline: o.Baseline,
		Baselines: o.Baselines, LeaseFile: o.LeaseFile,
	}
	for _, src := range sources {
		if err := ctx.Err(); err != nil {
			return s, fmt.Errorf("collect host state: %w", err)
		}
		if err := src.read(ctx, plan, &o, s); err != nil {
			s.fail(src.name, err)
		}
	}
	return s, nil
}

func (o Options) withDefaults(plan *topology.Plan) Options {
	if o.Phase == "" {
		o.Phase = PhaseBefore
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.LeaseFile == "" {
		o.LeaseFile = filepath.Join(o.StateDir, plan.Lab, "dnsmasq.leases")
	}
	if o.LibvirtURI == "" {
		o.LibvirtURI = "qemu:///system"
	}
	return o
}

// procNet is the per-thread view of /proc/net, which follows the calling
// thread's network namespace (/proc/self/net follows the process leader).
const procNet = "/proc/thread-self/net"

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("run %s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

func readIPv6(_ context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	if _, err := os.Stat("/proc/sys/net/ipv6"); errors.Is(err, fs.ErrNotExist) {
		s.IPv6Host = IPv6Host{Disabled: true,
			Reason: "/proc/sys/net/ipv6 is absent (kernel booted with ipv6.disable=1)"}
		return nil
	}
	v, err := readInt("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	if err != nil {
		return err
	}
	if v == 1 {
		s.IPv6Host = IPv6Host{Disabled: true, Reason: "net.ipv6.conf.all.disable_ipv6=1"}
	}
	return nil
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

func readIptables(ctx context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	out, err := run(ctx, "iptables", "-w", "5", "-S")
	if err != nil {
		return err
	}
	s.IPv4 = parseIptables(out)
	return nil
}

// readIptablesNAT lists the nat table's POSTROUTING chain (`iptables -t
// nat -S POSTROUTING`), where Docker puts its masquerade rules.
func readIptablesNAT(ctx context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	out, err := run(ctx, "iptables", "-w", "5", "-t", "nat", "-S", "POSTROUTING")
	if err != nil {
		return err
	}
	s.IPv4.NAT = parseNAT(out)
	s.IPv4.NATRead = true
	return nil
}

// readIPForward reads net.ipv4.ip_forward of the calling thread's network
// namespace (`sysctl net.ipv4.ip_forward`).
func readIPForward(_ context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	v, err := readInt("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return err
	}
	s.IPForward = &v
	return nil
}

func readIP6tables(ctx context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	if s.IPv6Host.Disabled && strings.Contains(s.IPv6Host.Reason, "absent") {
		return nil
	}
	out, err := run(ctx, "ip6tables", "-w", "5", "-S")
	if err != nil {
		return err
	}
	s.IPv6 = parseIptables(out)
	return nil
}

// readLegacy lists iptables-legacy rules, but only for tables the kernel
// already holds: listing a missing legacy table would create it.
func readLegacy(ctx context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	for _, fam := range []struct {
		names, tool   string
		tables, rules *[]string
	}{
		{"ip_tables_names", "iptables-legacy", &s.Legacy.Tables4, &s.Legacy.Rules},
		{"ip6_tables_names", "ip6tables-legacy", &s.Legacy.Tables6, &s.Legacy.Rules6},
	} {
		b, err := os.ReadFile(filepath.Join(procNet, fam.names))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read legacy tables: %w", err)
		}
		*fam.tables = strings.Fields(string(b))
		for _, t := range *fam.tables {
			out, err := run(ctx, fam.tool, "-w", "5", "-t", t, "-S")
			if err != nil {
				return err
			}
			*fam.rules = append(*fam.rules, legacyRules(t, out)...)
		}
	}
	return nil
}

func readBrNF(_ context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	s.BrNF = BrNF{CallIptables: -1, CallIP6tables: -1}
	dir := "/proc/sys/net/bridge"
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	v4, err := readInt(filepath.Join(dir, "bridge-nf-call-iptables"))
	if err != nil {
		return err
	}
	v6, err := readInt(filepath.Join(dir, "bridge-nf-call-ip6tables"))
	if err != nil {
		return err
	}
	s.BrNF = BrNF{CallIptables: v4, CallIP6tables: v6}
	return nil
}

func readListeners(_ context.Context, _ *topology.Plan, _ *Options, s *HostState) error {
	var found []Listener
	inodes := map[uint64]int{}
	for _, f := range []struct{ file, proto, state string }{
		{"udp", "udp", "07"}, {"udp6", "udp", "07"}, {"tcp", "tcp", "0A"}, {"tcp6", "tcp", "0A"},
	} {
		b, err := os.ReadFile(filepath.Join(procNet, f.file))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read sockets: %w", err)
		}
		entries, err := parseProcNet(string(b))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.local.Port() == 53 && e.state == f.state {
				inodes[e.inode] = len(found)
				found = append(found, Listener{Proto: f.proto, Local: e.local})
			}
		}
	}
	if len(found) > 0 {
		nameOwners(inodes, found)
	}
	s.Listeners = found
	return nil
}

// nameOwners finds the process holding each socket inode by reading
// /proc/PID/fd links ("socket:[INODE]"). Processes that vanish or cannot be
// read are skipped.
func nameOwners(inodes map[uint64]int, found []Listener) {
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range pids {
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.Trim(link[7:], "[]"), 10, 64)
			i, ok := inodes[ino]
			if err != nil || !ok || found[i].PID != 0 {
				continue
			}
			found[i].PID, _ = strconv.Atoi(filepath.Base(dir))
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			found[i].Process = strings.TrimSpace(string(comm))
		}
	}
}

func readPidFiles(_ context.Context, _ *topology.Plan, o *Options, s *HostState) error {
	paths, err := filepath.Glob(filepath.Join(o.StateDir, "*", "*.pid"))
	if err != nil {
		return fmt.Errorf("list pid files: %w", err)
	}
	for _, p := range paths {
		pid, err := readInt(p)
		if err != nil {
			s.PidFiles = append(s.PidFiles, PidFile{Path: p})
			continue
		}
		_, statErr := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
		s.PidFiles = append(s.PidFiles, PidFile{Path: p, PID: pid, Alive: statErr == nil})
	}
	return nil
}

func readLeases(_ context.Context, _ *topology.Plan, o *Options, s *HostState) error {
	b, err := os.ReadFile(o.LeaseFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read leases: %w", err)
	}
	leases, err := parseLeases(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", o.LeaseFile, err)
	}
	s.Leases = leases
	return nil
}
