package dnsmasq

import (
	"net/netip"
	"strings"
	"testing"
)

// Test resources of the two-segment lab: lab "hld" with bridges br-hld
// (10.0.30.0/24) and br-hld-b (10.0.31.0/24), management 10.0.32.0/24.
const routedLab = `
name: hld
bridge: br-hld
subnet: 10.0.30.0/24
domain: lab
mtu: 1500
dhcp_range: 10.0.30.10-10.0.30.99
docker_range: 10.0.30.128/25
management:
  subnet: 10.0.32.0/24
segments:
  - name: b
    subnet: 10.0.31.0/24
vms:
  - name: vm1
  - name: vm3
    segment: b
containers:
  - name: c1
  - name: c3
    segment: b
`

// TestRenderRoutedLabServesEverySegment checks the lines that make one
// dnsmasq serve both segments, and that nothing can reach an upstream or
// give a VM a lab default route.
func TestRenderRoutedLabServesEverySegment(t *testing.T) {
	cfg, err := Render(testPlan(t, routedLab), "/state")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(cfg.Text, "\n")
	for _, must := range []string{
		"interface=br-hld", "interface=br-hld-b", "bind-interfaces", "except-interface=lo",
		"listen-address=10.0.30.1", "listen-address=10.0.31.1", "no-resolv", "no-hosts",
		"local=/30.0.10.in-addr.arpa/", "local=/31.0.10.in-addr.arpa/",
		"auth-server=gw.lab,br-hld,br-hld-b", "auth-zone=lab,10.0.30.0/24,10.0.31.0/24",
		"host-record=gw.lab,host.lab,10.0.30.1", "host-record=gw-b.lab,10.0.31.1",
		"host-record=vm3.lab,vm3,10.0.31.10", "host-record=c3.lab,c3,10.0.31.254",
		"dhcp-range=set:seg-main,10.0.30.0,static,255.255.255.0,1h",
		"dhcp-range=set:seg-b,10.0.31.0,static,255.255.255.0,1h",
		"dhcp-host=52:54:0a:00:1f:0a,10.0.31.10,vm3",
		"dhcp-option=3",
		"dhcp-option=tag:seg-main,6,10.0.30.1", "dhcp-option=tag:seg-b,6,10.0.31.1",
		"dhcp-option=tag:seg-main,121,10.0.31.0/24,10.0.30.1",
		"dhcp-option=tag:seg-b,121,10.0.30.0/24,10.0.31.1",
	} {
		if !contains(lines, must) {
			t.Errorf("config lacks %q", must)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "server=") || strings.HasPrefix(l, "resolv-file=") ||
			strings.HasPrefix(l, "listen-address=0.0.0.0") ||
			strings.HasPrefix(l, "dhcp-option=3,") || strings.Contains(l, "0.0.0.0/0") {
			t.Errorf("config has forbidden line %q", l)
		}
	}
}

// TestRenderRoutesToEveryOtherSegment renders a third segment (rendered
// only, never put on the host): each segment's clients get one route per
// other segment, via their own gateway.
func TestRenderRoutesToEveryOtherSegment(t *testing.T) {
	three := strings.Replace(routedLab, "    subnet: 10.0.31.0/24\n",
		"    subnet: 10.0.31.0/24\n  - name: c\n    subnet: 10.0.33.0/24\n", 1)
	cfg, err := Render(testPlan(t, three), "/state")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"seg-main": "10.0.31.0/24,10.0.30.1,10.0.33.0/24,10.0.30.1",
		"seg-b":    "10.0.30.0/24,10.0.31.1,10.0.33.0/24,10.0.31.1",
		"seg-c":    "10.0.30.0/24,10.0.33.1,10.0.31.0/24,10.0.33.1",
	}
	got := map[string]string{}
	for _, l := range strings.Split(cfg.Text, "\n") {
		rest, ok := strings.CutPrefix(l, "dhcp-option=tag:")
		if tag, routes, ok2 := strings.Cut(rest, ",121,"); ok && ok2 {
			got[tag] = routes
		}
	}
	if len(got) != len(want) {
		t.Errorf("option 121 lines for %v, want %v", got, want)
	}
	for tag, routes := range want {
		if got[tag] != routes {
			t.Errorf("option 121 for %s = %q, want %q", tag, got[tag], routes)
		}
	}
}

func TestDriftCoversEverySegment(t *testing.T) {
	p := testPlan(t, routedLab)
	ip := netip.MustParseAddr
	vm1 := Lease{MAC: "52:54:0a:00:1e:0a", IP: ip("10.0.30.10")}
	if d := Drift(p, []Lease{vm1, {MAC: "52:54:0a:00:1f:0a", IP: ip("10.0.31.10")}}); len(d) != 0 {
		t.Errorf("Drift of matching leases = %v; want none", d)
	}
	tests := []struct {
		name   string
		leases []Lease
		want   string
	}{
		{"missing", []Lease{vm1}, "vm3 (mac 52:54:0a:00:1f:0a): want 10.0.31.10: no lease"},
		{"wrong bridge", []Lease{vm1, {MAC: "52:54:0a:00:1f:0a", IP: ip("10.0.30.11")}},
			"vm3 (mac 52:54:0a:00:1f:0a): want 10.0.31.10, got 10.0.30.11: " +
				`leased on segment "main", planned on segment "b"`},
		{"moved", []Lease{vm1, {MAC: "52:54:0a:00:1f:0a", IP: ip("10.0.31.11")}},
			"vm3 (mac 52:54:0a:00:1f:0a): want 10.0.31.10, got 10.0.31.11: " +
				"leased address differs from the plan"},
		{"taken", []Lease{vm1, {MAC: "52:54:0a:00:1f:0a", IP: ip("10.0.31.10")},
			{MAC: "02:00:00:00:00:01", IP: ip("10.0.31.10")}},
			"vm3 (mac 02:00:00:00:00:01): want 10.0.31.10, got 10.0.31.10: " +
				"another mac holds the vm's address"},
	}
	for _, tt := range tests {
		d := Drift(p, tt.leases)
		if len(d) != 1 || d[0].String() != tt.want {
			t.Errorf("%s: Drift = %v; want [%s]", tt.name, d, tt.want)
		}
	}
}
