package box

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testCustomization(t *testing.T, agent string) *customization {
	t.Helper()
	c, err := newCustomization([]byte("ssh-rsa AAAA test\n"), agent)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fileOf(t *testing.T, c *customization, path string) file {
	t.Helper()
	for _, f := range c.files {
		if f.path == path {
			return f
		}
	}
	t.Fatalf("customization has no %s", path)
	return file{}
}

func TestCustomizationGuestFiles(t *testing.T) {
	c := testCustomization(t, "")
	network := string(fileOf(t, c, "/etc/systemd/network/20-hybridlab.network").data)
	for _, want := range []string{"Type=ether", "Name=en* eth*", "ClientIdentifier=mac",
		"UseGateway=no", "UseRoutes=yes", "DHCP=ipv4"} {
		if !strings.Contains(network, want) {
			t.Errorf("network unit lacks %q:\n%s", want, network)
		}
	}
	if f := fileOf(t, c, "/etc/machine-id"); len(f.data) != 0 {
		t.Errorf("machine-id is %q, want empty so each VM gets its own", f.data)
	}
	if f := fileOf(t, c, "/etc/resolv.conf"); len(f.data) != 0 {
		t.Errorf("resolv.conf is %q, want empty until DHCP supplies DNS", f.data)
	}
	if f := fileOf(t, c, "/etc/sudoers.d/vagrant"); f.mode != 0o440 {
		t.Errorf("sudoers mode %o, want 440", f.mode)
	}
	if f := fileOf(t, c, "/usr/local/sbin/hybridlab-resolv"); f.mode != 0o755 {
		t.Errorf("resolv helper mode %o, want 755", f.mode)
	}
	probe := string(fileOf(t, c, "/etc/systemd/system/hybridlab-probe.service").data)
	if !strings.Contains(probe, "ExecStart=/usr/local/bin/probe serve") {
		t.Errorf("probe unit: %s", probe)
	}
	for _, u := range []string{"apt-daily.timer", "systemd-timesyncd.service",
		"systemd-networkd-wait-online.service", "e2scrub_reap.service"} {
		if c.links["/etc/systemd/system/"+u] != "/dev/null" {
			t.Errorf("%s is not masked", u)
		}
	}
	if c.links["/var/lib/dbus/machine-id"] != "/etc/machine-id" {
		t.Error("dbus machine-id does not follow /etc/machine-id")
	}
}

func TestProbeServiceEnabledOnlyWithAgent(t *testing.T) {
	enables := func(c *customization) bool {
		for _, cmd := range c.commands {
			if cmd[0] == "systemctl" && cmd[1] == "enable" &&
				strings.Contains(strings.Join(cmd, " "), "hybridlab-probe.service") {
				return true
			}
		}
		return false
	}
	if enables(testCustomization(t, "")) {
		t.Error("probe service enabled without an agent binary")
	}
	if !enables(testCustomization(t, "/bin/true")) {
		t.Error("probe service not enabled with an agent binary")
	}
}

func TestInputsKey(t *testing.T) {
	dir := t.TempDir()
	agentA := filepath.Join(dir, "a")
	agentB := filepath.Join(dir, "b")
	os.WriteFile(agentA, []byte("agent one"), 0o755)
	os.WriteFile(agentB, []byte("agent two"), 0o755)
	key := func(agent string) string {
		k, err := inputsKey(testCustomization(t, agent), agent)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if key("") != key("") {
		t.Error("same inputs give different keys")
	}
	if key(agentA) == key(agentB) {
		t.Error("different agent binaries give the same key")
	}
	if key("") == key(agentA) {
		t.Error("adding an agent does not change the key")
	}
	if _, err := inputsKey(testCustomization(t, "/nonexistent"), "/nonexistent"); err == nil {
		t.Error("missing agent binary: no error")
	}
}

func TestVersionOf(t *testing.T) {
	if v := versionOf("fffffff0"); v != "1.0.268435455" {
		t.Errorf("versionOf = %s", v)
	}
}

func TestPackagesCoverRoles(t *testing.T) {
	got := strings.Join(Packages(), ",")
	for _, p := range []string{"docker.io", "tcpdump", "linux-image-cloud-amd64",
		"openssh-server"} {
		if !strings.Contains(got, p) {
			t.Errorf("packages lack %s", p)
		}
	}
	if strings.Contains(got, "dnsutils") {
		t.Error("packages include dnsutils")
	}
}

// TestBuildAndCache builds the real box (about a minute and a half, needs
// root and Debian's mirror), then checks a second Build is a cache hit.
func TestBuildAndCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("building a box needs root (mmdebstrap --mode=root)")
	}
	if testing.Short() {
		t.Skip("box build takes minutes; skipped with -short")
	}
	for _, tool := range []string{"mmdebstrap", "mke2fs", "qemu-img", "vagrant"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("box build needs %s: %v", tool, err)
		}
	}
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	opts := Options{Agent: os.Getenv("HYBRIDLAB_AGENT"), Progress: &log}
	first, err := Build(ctx, opts)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, tail(log.String()))
	}
	t.Logf("box %s %s: %d bytes, cached=%v, build time %s", first.Name, first.Version,
		first.Size, first.Cached, first.BuildTime)
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.HasPrefix(line, "box") && strings.Contains(line, " in ") {
			t.Log(line)
		}
	}
	if !Added(opts.VagrantHome, first) {
		t.Errorf("box %s %s not in vagrant after Build", first.Name, first.Version)
	}
	start := time.Now()
	second, err := Build(ctx, opts)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if !second.Cached || second.Key != first.Key {
		t.Errorf("second build not a cache hit: cached=%v", second.Cached)
	}
	t.Logf("cached Build took %s", time.Since(start))
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
