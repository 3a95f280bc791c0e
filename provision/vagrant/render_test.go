package vagrant

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hybridlab/provision/accel"
	"hybridlab/topology"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const testLab = `
name: hlv
bridge: br-hlv
subnet: 10.0.2.0/24
management:
  subnet: 10.0.8.0/24
  bridge: virbr-hlv
vms:
  - name: base1
  - name: docker1
    role: docker
    memory: 768
  - name: obs1
    role: observer
`

func testPlan(t *testing.T) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(testLab))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testConfig(t *testing.T, a accel.Accel, ipv6 bool) Config {
	return Config{Plan: testPlan(t), Accel: a, Box: "hybridlab/debian12",
		BoxVersion: "1.0.42", StateDir: "/var/lib/hybridlab/hlv", IPv6: ipv6}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n%s", name, got)
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		golden string
		node   string
		accel  accel.Accel
		ipv6   bool
	}{
		{"base-tcg.Vagrantfile", "base1", accel.TCG, true},
		{"docker-tcg.Vagrantfile", "docker1", accel.TCG, true},
		{"observer-tcg.Vagrantfile", "obs1", accel.TCG, true},
		{"base-kvm-noipv6.Vagrantfile", "base1", accel.KVM, false},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			c := testConfig(t, tt.accel, tt.ipv6)
			n, _ := c.Plan.Node(tt.node)
			got, err := Render(c, n)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, got)
			rubySyntax(t, got)
		})
	}
}

func TestRenderNoIPv6DisablesGuestIPv6(t *testing.T) {
	c := testConfig(t, accel.TCG, false)
	n, _ := c.Plan.Node("base1")
	got, _ := Render(c, n)
	if !strings.Contains(string(got), `management_network_guest_ipv6 = "no"`) {
		t.Error("host without IPv6: guest IPv6 on the management network stays on")
	}
	c.IPv6 = true
	got, _ = Render(c, n)
	if strings.Contains(string(got), "management_network_guest_ipv6") {
		t.Error("host with IPv6: guest IPv6 option rendered")
	}
}

func TestEmulatorWrapper(t *testing.T) {
	c := testConfig(t, accel.TCG, true)
	c.CacheDir = t.TempDir()
	if err := WriteEmulator(c); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(c.EmulatorPath())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "qemu-tcg.sh", script)
	// Run the wrapper's argument rewrite with echo in place of QEMU.
	echo := strings.Replace(string(script), qemuBinary, "echo", 1)
	out, err := exec.Command("sh", "-c", echo, "qemu", "-name", "x y", "-accel", "tcg",
		"-m", "512").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "-name x y -accel tcg,tb-size=128 -m 512" {
		t.Errorf("wrapper passed %q", got)
	}
	kvm := testConfig(t, accel.KVM, true)
	if kvm.EmulatorPath() != "" {
		t.Error("kvm VMs get a TCG wrapper")
	}
}

// rubySyntax checks the Vagrantfile parses as Ruby when ruby is installed
// (it is, with vagrant).
func rubySyntax(t *testing.T, src []byte) {
	t.Helper()
	if _, err := exec.LookPath("ruby"); err != nil {
		return
	}
	cmd := exec.Command("ruby", "-c")
	cmd.Stdin = bytes.NewReader(src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("rendered Vagrantfile is not valid Ruby: %v\n%s", err, out)
	}
}
