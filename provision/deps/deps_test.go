package deps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// fakeSystem records the commands Install runs; installed lists the
// packages dpkg-query reports, and a successful apt-get install adds its
// packages to it.
type fakeSystem struct {
	installed map[string]bool
	euid      int
	debian    bool
	commands  []string
}

func (f *fakeSystem) system() *system {
	return &system{
		euid:     func() int { return f.euid },
		isDebian: func() bool { return f.debian },
		lookPath: func(name string) (string, error) {
			if !f.debian {
				return "", exec.ErrNotFound
			}
			return "/usr/bin/" + name, nil
		},
		query: func(_ context.Context, pkgs []string) ([]byte, error) {
			var b bytes.Buffer
			for _, p := range pkgs {
				if f.installed[p] {
					fmt.Fprintf(&b, "%s ii \n", p)
				}
			}
			return b.Bytes(), nil
		},
		run: func(_ context.Context, out io.Writer, env []string, name string,
			args ...string,
		) error {
			cmd := strings.TrimSpace(strings.Join(env, " ") + " " + name + " " +
				strings.Join(args, " "))
			f.commands = append(f.commands, cmd)
			fmt.Fprintf(out, "ran %s\n", cmd)
			if slices.Contains(args, "install") {
				for _, a := range args {
					f.installed[a] = true
				}
			}
			return nil
		},
	}
}

func TestPackages(t *testing.T) {
	if got := Packages(Bench, Observer); !slices.Equal(got,
		[]string{"iperf3", "sockperf", "tcpdump"}) {
		t.Errorf("Packages(bench, observer) = %v", got)
	}
	all := Packages()
	for _, want := range []string{"docker.io", "nftables", "iptables", "dnsmasq-base",
		"iproute2", "busybox-static", "libvirt-daemon-system", "libvirt-clients",
		"qemu-system-x86", "qemu-utils", "vagrant", "vagrant-libvirt", "mmdebstrap", "uidmap",
		"e2fsprogs", "sockperf", "iperf3", "tcpdump", "iputils-ping"} {
		if !slices.Contains(all, want) {
			t.Errorf("Packages() lacks %s", want)
		}
	}
	if len(all) != 19 || !slices.IsSorted(all) {
		t.Errorf("Packages() = %v, want 19 sorted names", all)
	}
}

func TestParseInstalled(t *testing.T) {
	out := "iproute2 ii \nvagrant rc \nlibc6:amd64 ii \ntcpdump hi \nsockperf un \n"
	got := parseInstalled([]byte(out))
	want := map[string]bool{"iproute2": true, "libc6": true, "tcpdump": true}
	if len(got) != len(want) {
		t.Fatalf("parseInstalled = %v, want %v", got, want)
	}
	for k := range want {
		if !got[k] {
			t.Errorf("%s not seen as installed", k)
		}
	}
}

func TestInstallRunsAptOnceAndOnlyForMissing(t *testing.T) {
	f := &fakeSystem{installed: map[string]bool{"iproute2": true}, debian: true}
	s := f.system()
	var out bytes.Buffer

	if err := s.install(context.Background(), []string{"iproute2", "tcpdump"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := s.install(context.Background(), []string{"sockperf"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := s.install(context.Background(), []string{"tcpdump"}, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"apt-get update",
		"DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y " +
			"--no-install-recommends tcpdump",
		"DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y " +
			"--no-install-recommends sockperf",
	}
	if !slices.Equal(f.commands, want) {
		t.Errorf("commands:\n%s\nwant\n%s", strings.Join(f.commands, "\n"),
			strings.Join(want, "\n"))
	}
	if !strings.Contains(out.String(), "ran apt-get update") {
		t.Errorf("apt output not streamed: %q", out.String())
	}
}

func TestInstallWithoutRootNamesPackagesAndCommand(t *testing.T) {
	f := &fakeSystem{installed: map[string]bool{}, debian: true, euid: 1000}
	err := f.system().install(context.Background(), []string{"tcpdump", "iperf3"}, io.Discard)
	var ni *NotInstallableError
	if !errors.As(err, &ni) {
		t.Fatalf("install = %v, want *NotInstallableError", err)
	}
	want := "missing packages tcpdump, iperf3 (installing needs root); install them with: " +
		"apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y " +
		"--no-install-recommends tcpdump iperf3"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if len(f.commands) != 0 {
		t.Errorf("ran %v without root", f.commands)
	}
}

func TestInstallOnNonDebianHost(t *testing.T) {
	f := &fakeSystem{installed: map[string]bool{}, debian: false}
	err := f.system().install(context.Background(), []string{"tcpdump"}, io.Discard)
	var ni *NotInstallableError
	if !errors.As(err, &ni) || !slices.Equal(ni.Missing, []string{"tcpdump"}) ||
		!strings.Contains(err.Error(), "not Debian-like") ||
		!strings.Contains(err.Error(), "apt-get install -y --no-install-recommends tcpdump") {
		t.Errorf("install = %v", err)
	}
	if _, err := f.system().missing(context.Background(), []string{"x"}); !errors.Is(err,
		ErrNotDebian) {
		t.Errorf("missing without dpkg = %v, want ErrNotDebian", err)
	}
}

func TestMissingOnThisHost(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query: not a Debian-like host")
	}
	got, err := Missing(context.Background(), []string{"iproute2", "hybridlab-no-such-package"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"hybridlab-no-such-package"}) {
		t.Errorf("Missing = %v, want only the made-up package", got)
	}
}
