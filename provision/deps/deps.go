// Package deps checks and installs what the host needs before a lab can
// run: Debian packages, the Docker and libvirt daemons (started without
// systemd), and the kernel switches that decide how bridged traffic is
// filtered.
package deps

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Capability is a part of hybridlab that needs host packages.
type Capability string

// Capabilities and what they cover.
const (
	// Network: the bridge, the guard, Docker containers, lab DHCP/DNS.
	Network Capability = "network"
	// VMs: libvirt, QEMU (TCG), Vagrant and the box builder.
	VMs Capability = "vms"
	// Bench: traffic generators of the performance suites.
	Bench Capability = "bench"
	// Observer: packet capture.
	Observer Capability = "observer"
)

// Capabilities lists every capability in a stable order.
func Capabilities() []Capability { return []Capability{Network, VMs, Bench, Observer} }

var packages = map[Capability][]string{
	Network: {"docker.io", "nftables", "iptables", "dnsmasq-base", "iproute2",
		"busybox-static", "iputils-ping"},
	VMs: {"libvirt-daemon-system", "libvirt-clients", "qemu-system-x86", "qemu-utils",
		"vagrant", "vagrant-libvirt", "mmdebstrap", "uidmap", "e2fsprogs"},
	Bench:    {"sockperf", "iperf3"},
	Observer: {"tcpdump"},
}

// Packages returns the Debian packages the capabilities need, sorted and
// each once; with no capability given, those of every capability.
func Packages(caps ...Capability) []string {
	if len(caps) == 0 {
		caps = Capabilities()
	}
	var out []string
	for _, c := range caps {
		out = append(out, packages[c]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ErrNotDebian: the host has no dpkg/apt-get, so packages can be neither
// checked nor installed.
var ErrNotDebian = errors.New("not a Debian-like host")

// NotInstallableError says which packages are missing and how to install
// them, when Install cannot do it itself (not root, or not Debian-like).
type NotInstallableError struct {
	Missing []string
	// Reason is why Install did not install them.
	Reason string
	// Command installs them on a Debian-like host.
	Command string
}

func (e *NotInstallableError) Error() string {
	return fmt.Sprintf("missing packages %s (%s); install them with: %s",
		strings.Join(e.Missing, ", "), e.Reason, e.Command)
}

// InstallCommand is the shell command that installs pkgs, as Install runs
// it.
func InstallCommand(pkgs []string) string {
	return "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y " +
		"--no-install-recommends " + strings.Join(pkgs, " ")
}

// Missing returns those of pkgs that dpkg does not record as installed
// (`dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n' PKG…`). Without
// dpkg-query the error matches ErrNotDebian.
func Missing(ctx context.Context, pkgs []string) ([]string, error) {
	return host.missing(ctx, pkgs)
}

// Install installs those of pkgs that are missing, streaming apt-get's
// output to out:
//
//	apt-get update            (once per process)
//	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends PKG…
//
// When nothing is missing it runs nothing. When the process is not root or
// the host is not Debian-like it installs nothing and returns a
// *NotInstallableError naming the packages and the command.
func Install(ctx context.Context, pkgs []string, out io.Writer) error {
	return host.install(ctx, pkgs, out)
}

// system is the host as Install sees it; tests replace its functions.
type system struct {
	euid     func() int
	lookPath func(string) (string, error)
	// isDebian reports whether /etc/debian_version exists.
	isDebian func() bool
	// run runs a command with extra environment, streaming to out.
	run func(ctx context.Context, out io.Writer, env []string, name string, args ...string) error
	// query runs dpkg-query and returns its standard output.
	query func(ctx context.Context, pkgs []string) ([]byte, error)

	mu      sync.Mutex
	updated bool
}

var host = &system{
	euid:     os.Geteuid,
	lookPath: exec.LookPath,
	isDebian: func() bool { _, err := os.Stat("/etc/debian_version"); return err == nil },
	run:      runStreaming,
	query:    dpkgQuery,
}

func (s *system) missing(ctx context.Context, pkgs []string) ([]string, error) {
	if len(pkgs) == 0 {
		return nil, nil
	}
	if _, err := s.lookPath("dpkg-query"); err != nil {
		return nil, fmt.Errorf("check packages: %w: no dpkg-query", ErrNotDebian)
	}
	out, err := s.query(ctx, pkgs)
	if err != nil {
		return nil, fmt.Errorf("check packages: %w", err)
	}
	installed := parseInstalled(out)
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

// parseInstalled reads "NAME STATUS" lines; a package is installed when
// the second letter of its status is "i" (ii, hi).
func parseInstalled(out []byte) map[string]bool {
	installed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, status, ok := strings.Cut(sc.Text(), " ")
		if ok && len(status) >= 2 && status[1] == 'i' {
			installed[strings.Split(name, ":")[0]] = true
		}
	}
	return installed
}

func dpkgQuery(ctx context.Context, pkgs []string) ([]byte, error) {
	args := append([]string{"-W", "-f=${Package} ${db:Status-Abbrev}\n"}, pkgs...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "dpkg-query", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// Exit status 1 only means some package is unknown to dpkg.
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dpkg-query: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (s *system) install(ctx context.Context, pkgs []string, out io.Writer) error {
	missing, err := s.missing(ctx, pkgs)
	if errors.Is(err, ErrNotDebian) {
		return &NotInstallableError{Missing: pkgs, Reason: "no dpkg on this host, so it " +
			"is not Debian-like; install the equivalents", Command: InstallCommand(pkgs)}
	}
	if err != nil || len(missing) == 0 {
		return err
	}
	if err := s.canInstall(missing); err != nil {
		return err
	}

	if err := s.update(ctx, out); err != nil {
		return err
	}

	args := append([]string{"-o", "DPkg::Lock::Timeout=300", "install", "-y",
		"--no-install-recommends"}, missing...)
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if err := s.run(ctx, out, env, "apt-get", args...); err != nil {
		return fmt.Errorf("install packages %s: %w", strings.Join(missing, ", "), err)
	}

	still, err := s.missing(ctx, missing)
	if err != nil {
		return err
	}
	if len(still) > 0 {
		return fmt.Errorf("install packages: apt-get succeeded but %s still missing",
			strings.Join(still, ", "))
	}
	return nil
}

func (s *system) canInstall(missing []string) error {
	e := &NotInstallableError{Missing: missing, Command: InstallCommand(missing)}
	switch {
	case !s.isDebian():
		e.Reason = "no /etc/debian_version: not a Debian-like host; install the equivalents"
	case s.lookPathErr("apt-get") != nil:
		e.Reason = "no apt-get on this host"
	case s.euid() != 0:
		e.Reason = "installing needs root"
	default:
		return nil
	}
	return e
}

func (s *system) lookPathErr(name string) error {
	_, err := s.lookPath(name)
	return err
}

// update runs `apt-get update` the first time this process installs.
func (s *system) update(ctx context.Context, out io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.updated {
		return nil
	}
	if err := s.run(ctx, out, nil, "apt-get", "update"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	s.updated = true
	return nil
}

func runStreaming(ctx context.Context, out io.Writer, env []string, name string,
	args ...string,
) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = out
	cmd.Stderr = out
	return cmd.Run()
}
