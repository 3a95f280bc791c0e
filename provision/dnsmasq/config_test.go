package dnsmasq

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hybridlab/topology"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// Test resources: lab "hlc" on bridge br-hlc, 10.0.5.0/24.
const testLab = `
name: hlc
bridge: br-hlc
subnet: 10.0.5.0/24
domain: lab
mtu: 1500
dhcp_range: 10.0.5.10-10.0.5.99
docker_range: 10.0.5.128/25
vms:
  - name: vm1
  - name: vm2
    ip: 10.0.5.42
containers:
  - name: c1
`

func testPlan(t *testing.T, yaml string) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRenderMatchesGolden renders a one-segment lab (hlc) and a routed lab
// of two segments (hld, see segments_test.go) and compares each with its
// golden file; -update rewrites them.
func TestRenderMatchesGolden(t *testing.T) {
	for _, tt := range []struct{ lab, yaml string }{{"hlc", testLab}, {"hld", routedLab}} {
		t.Run(tt.lab, func(t *testing.T) {
			cfg, err := Render(testPlan(t, tt.yaml), "/var/lib/hybridlab/"+tt.lab)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.lab+".conf")
			if *update {
				if err := os.WriteFile(golden, []byte(cfg.Text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if cfg.Text != string(want) {
				t.Errorf("rendered config differs from %s (run with -update after checking):\n%s",
					golden, cfg.Text)
			}
		})
	}
}

func TestRenderNeverListensOnAWildcard(t *testing.T) {
	cfg, err := Render(testPlan(t, testLab), "/state")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(cfg.Text, "\n")
	for _, must := range []string{"interface=br-hlc", "bind-interfaces", "listen-address=10.0.5.1",
		"except-interface=lo", "no-resolv", "no-hosts", "dhcp-option=3"} {
		if !contains(lines, must) {
			t.Errorf("config lacks %q", must)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "server=") || strings.HasPrefix(l, "resolv-file=") ||
			strings.HasPrefix(l, "listen-address=0.0.0.0") {
			t.Errorf("config has forbidden line %q", l)
		}
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func TestRenderHashFollowsThePlan(t *testing.T) {
	a, _ := Render(testPlan(t, testLab), "/state")
	b, _ := Render(testPlan(t, testLab), "/state")
	c, _ := Render(testPlan(t, testLab+"  - name: c2\n"), "/state")
	if a.Hash != b.Hash || a.Hash == c.Hash {
		t.Errorf("hashes: same plan %s/%s, changed plan %s", a.Hash, b.Hash, c.Hash)
	}
}

func TestRenderRejectsRelativeStateDir(t *testing.T) {
	_, err := Render(testPlan(t, testLab), "state")
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Render with relative state dir: %v; want ErrInvalid", err)
	}
}

func TestReverseZone(t *testing.T) {
	tests := map[string]string{
		"10.0.5.0/24":    "5.0.10.in-addr.arpa",
		"10.0.4.0/23":    "0.10.in-addr.arpa",
		"10.0.5.128/25":  "5.0.10.in-addr.arpa",
		"172.16.0.0/12":  "172.in-addr.arpa",
		"192.168.0.0/16": "168.192.in-addr.arpa",
	}
	for in, want := range tests {
		if got := reverseZone(netip.MustParsePrefix(in)); got != want {
			t.Errorf("reverseZone(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseLeases(t *testing.T) {
	data := []byte("1764860000 52:54:0a:00:05:0a 10.0.5.10 vm1 01:52:54:0a:00:05:0a\n" +
		"0 52:54:0A:00:05:2A 10.0.5.42 * *\n" +
		"duid 00:01:00:01:2c:aa\n")
	got, err := ParseLeases(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Lease{
		{Expiry: time.Unix(1764860000, 0).UTC(), MAC: "52:54:0a:00:05:0a",
			IP: netip.MustParseAddr("10.0.5.10"), Hostname: "vm1", ClientID: "01:52:54:0a:00:05:0a"},
		{MAC: "52:54:0a:00:05:2a", IP: netip.MustParseAddr("10.0.5.42")},
	}
	if len(got) != len(want) {
		t.Fatalf("ParseLeases = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("lease %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := ParseLeases([]byte("x 52:54:00:00:00:01 10.0.5.10 a b\n")); err == nil {
		t.Error("ParseLeases accepted a bad expiry")
	}
}

func TestAddRecordRejectsPathsAndBadNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"../etc", "a/b", "", "UPPER", "-x"} {
		if err := AddRecord(dir, name, netip.MustParseAddr("10.0.5.9")); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddRecord(%q): %v; want ErrInvalid", name, err)
		}
	}
	if err := AddRecord(dir, "late", netip.MustParseAddr("10.0.5.120")); err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(filepath.Join(dir, HostsDir, "late"))
	if string(body) != "10.0.5.120 late\n" {
		t.Errorf("record file = %q", body)
	}
	if err := RemoveRecord(dir, "late"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRecord(dir, "late"); err != nil {
		t.Errorf("second RemoveRecord: %v; want success", err)
	}
}

func TestDriftNamesEachEntryOffPlan(t *testing.T) {
	p := testPlan(t, testLab)
	ip := netip.MustParseAddr
	leases := []Lease{
		{MAC: "52:54:0a:00:05:0a", IP: ip("10.0.5.10"), Hostname: "vm1"},
	}
	both := append(leases, Lease{MAC: "52:54:0a:00:05:2a", IP: ip("10.0.5.42")})
	if d := Drift(p, both); len(d) != 0 {
		t.Errorf("Drift of matching leases = %v; want none", d)
	}
	tests := []struct {
		name   string
		leases []Lease
		want   string
	}{
		{"missing", leases, "vm2 (mac 52:54:0a:00:05:2a): want 10.0.5.42: no lease"},
		{"moved", append(leases, Lease{MAC: "52:54:0a:00:05:2a", IP: ip("10.0.5.50")}),
			"vm2 (mac 52:54:0a:00:05:2a): want 10.0.5.42, got 10.0.5.50: " +
				"leased address differs from the plan"},
		{"taken", append(leases, Lease{MAC: "52:54:0a:00:05:2a", IP: ip("10.0.5.42")},
			Lease{MAC: "02:00:00:00:00:01", IP: ip("10.0.5.42")}),
			"vm2 (mac 02:00:00:00:00:01): want 10.0.5.42, got 10.0.5.42: " +
				"another mac holds the vm's address"},
	}
	for _, tt := range tests {
		d := Drift(p, tt.leases)
		if len(d) != 1 || d[0].String() != tt.want {
			t.Errorf("%s: Drift = %v; want [%s]", tt.name, d, tt.want)
		}
	}
}
