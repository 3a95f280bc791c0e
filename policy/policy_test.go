package policy

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hybridlab/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the generated text (go test -update rewrites it):\n"+
			"--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// testLab is the lab of every test here: two VMs and two containers on
// bridge hlybr0 in 10.0.11.0/24 (vm1 .10, vm2 .11, web .254, db .253).
const testLab = `name: hly
bridge: hlybr0
subnet: 10.0.11.0/24
management: {subnet: 10.0.12.0/24}
vms: [{name: vm1}, {name: vm2, role: docker}]
containers: [{name: web}, {name: db}]
`

// denyPolicy is deny by default with a few allows, a reject and a drop of
// the host's own traffic.
const denyPolicy = `policies:
  default: deny
  log: true
  rules:
    - {name: web-from-vms, from: [{kind: vm}], to: [{node: web}], proto: tcp, ports: [80],
       action: accept}
    - {name: db-from-web, from: [{node: web}], to: [{node: db}], proto: tcp,
       ports: [5432, "8000-8100"], action: accept}
    - {name: docker-pings, from: [{role: docker}], to: [{kind: container}], proto: icmp,
       action: accept}
    - {name: vm2-not-vm1, from: [{node: vm2}], to: [{node: vm1}], proto: tcp,
       action: reject, log: true}
    - {name: host-not-db, from: [host], to: [{node: db}], action: drop}
    - {name: containers-udp-host, from: [{cidr: 10.0.11.252/30}], to: [host], proto: udp,
       ports: [5353], action: accept}
    - {name: vms-ping-host, from: [{kind: vm}], to: [host], proto: icmp, action: accept}
`

// changedPolicy drops db-from-web and lets vm1 reach db instead.
const changedPolicy = `policies:
  default: deny
  rules:
    - {name: web-from-vms, from: [{kind: vm}], to: [{node: web}], proto: tcp, ports: [80],
       action: accept}
    - {name: vm1-db, from: [{node: vm1}], to: [{node: db}], proto: tcp, ports: [5432],
       action: accept}
    - {name: all-udp, from: [{cidr: 10.0.11.0/24}], to: [{cidr: 10.0.11.0/24}, host],
       proto: udp, action: accept}
`

// allowPolicy allows by default and drops a little.
const allowPolicy = `policies:
  default: allow
  rules:
    - {name: no-vm1-web, from: [{node: vm1}], to: [{node: web}], action: drop}
    - {name: no-udp-host, from: [{kind: container}], to: [host], proto: udp, action: reject}
`

func testPlan(t *testing.T, policies string) (*topology.Plan, *topology.Policies) {
	t.Helper()
	lab, err := topology.Parse([]byte(testLab + policies))
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	return p, lab.Policies
}

func TestRender(t *testing.T) {
	for _, c := range []struct{ name, policies string }{
		{"deny", denyPolicy}, {"changed", changedPolicy}, {"allow", allowPolicy},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, pol := testPlan(t, c.policies)
			text, err := Render(p, pol)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "render-"+c.name+".golden", text)
		})
	}
}

func TestRenderWithoutPolicies(t *testing.T) {
	p, pol := testPlan(t, "")
	text, err := Render(p, pol)
	if err != nil || !strings.Contains(text, "no policies") {
		t.Errorf("Render = %q, %v", text, err)
	}
}

// Validate refuses such a rule already; Render must not trust that.
func TestRuleWithoutLabTraffic(t *testing.T) {
	p, _ := testPlan(t, "")
	lab, err := topology.Parse([]byte(testLab + `policies:
  rules: [{name: self, from: [host], to: [host], action: drop}]
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Render(p, lab.Policies)
	if !errors.Is(err, ErrNoTraffic) || !strings.Contains(err.Error(), `"self"`) {
		t.Errorf("err = %v, want ErrNoTraffic naming the rule", err)
	}
}

func TestMergeAndIntervals(t *testing.T) {
	cases := []struct {
		prefixes []string
		want     string
	}{
		{[]string{"10.0.11.10/32", "10.0.11.11/32"}, "ip saddr 10.0.11.10/31"},
		{[]string{"10.0.11.0/28", "10.0.11.5/32", "10.0.11.16/32"},
			"ip saddr 10.0.11.0-10.0.11.16"},
		{[]string{"10.0.11.254/32", "10.0.11.10/32"}, "ip saddr { 10.0.11.10, 10.0.11.254 }"},
	}
	for _, c := range cases {
		ms := addrMatch("saddr", prefixes(t, c.prefixes))
		if got := ms[len(ms)-1].text; got != c.want {
			t.Errorf("%v: %q, want %q", c.prefixes, got, c.want)
		}
	}
	top := intervalElems(65535, 65535, 2)
	if len(top) != 1 || top[0].IntervalEnd {
		t.Errorf("port 65535 as interval = %+v; want its start only", top)
	}
	ports := portMatch("tcp", []topology.PortSpec{{First: 80, Last: 80}, {First: 81, Last: 90},
		{First: 443, Last: 443}})
	if ports.text != "tcp dport { 80-90, 443 }" || len(ports.set.elems) != 4 {
		t.Errorf("ports: %q with %d elements", ports.text, len(ports.set.elems))
	}
}

func TestRuleCounterBuiltin(t *testing.T) {
	if !(RuleCounter{Name: CommentDefault}).Builtin() || (RuleCounter{Name: "web"}).Builtin() {
		t.Error("Builtin misclassifies")
	}
}

func prefixes(t *testing.T, ss []string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// routedLab is the routed lab of the tests here: segment main on bridge
// hlpbr0 in 10.0.40.0/24 (vm1 .10, web .254, db .253) and segment far on
// bridge hlpbr1 in 10.0.41.0/24 (vm3 .10, far1 .254, far2 .253); the host
// routes between them.
const routedLab = `name: hlp
bridge: hlpbr0
subnet: 10.0.40.0/24
management: {subnet: 10.0.42.0/24}
segments: [{name: far, bridge: hlpbr1, subnet: 10.0.41.0/24}]
vms: [{name: vm1}, {name: vm3, segment: far}]
containers: [{name: web}, {name: db}, {name: far1, segment: far},
  {name: far2, segment: far}]
`

// routedPolicy denies by default; it allows within main, across the
// segments (by node and by segment), to the host on every segment, and
// rejects one routed pair.
const routedPolicy = `policies:
  default: deny
  rules:
    - {name: web-to-db, from: [{node: web}], to: [{node: db}], proto: tcp, ports: [5432],
       action: accept}
    - {name: far1-to-web, from: [{node: far1}], to: [{node: web}], proto: tcp, ports: [80],
       action: accept}
    - {name: main-pings-far, from: [{segment: main}], to: [{segment: far}], proto: icmp,
       action: accept}
    - {name: far-udp-db, from: [{segment: far}], to: [{node: db}], proto: udp,
       ports: [5353], action: accept}
    - {name: vm3-not-web, from: [{node: vm3}], to: [{node: web}], proto: tcp,
       action: reject}
    - {name: far-ping-host, from: [{segment: far}], to: [host], proto: icmp, action: accept}
    - {name: host-not-far2, from: [host], to: [{node: far2}], proto: tcp, ports: [80],
       action: drop}
`

// routedChanged moves the cross-segment allows: far1 loses web, far2 gains db.
const routedChanged = `policies:
  default: deny
  rules:
    - {name: web-to-db, from: [{node: web}], to: [{node: db}], proto: tcp, ports: [5432],
       action: accept}
    - {name: far2-to-db, from: [{node: far2}], to: [{node: db}], proto: tcp,
       action: accept}
    - {name: far-pings-main, from: [{segment: far}], to: [{segment: main}], proto: icmp,
       action: accept}
`

func routedPlan(t *testing.T, policies string) (*topology.Plan, *topology.Policies) {
	t.Helper()
	lab, err := topology.Parse([]byte(routedLab + policies))
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Routed() {
		t.Fatalf("plan of the routed test lab has segments %v", p.Bridges())
	}
	return p, lab.Policies
}

func TestRenderRouted(t *testing.T) {
	for _, c := range []struct{ name, policies string }{
		{"deny", routedPolicy}, {"changed", routedChanged}, {"allow", `policies:
  default: allow
  rules: [{name: no-far-web, from: [{segment: far}], to: [{node: web}], action: drop}]
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, pol := routedPlan(t, c.policies)
			text, err := Render(p, pol)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "render-routed-"+c.name+".golden", text)
		})
	}
}
