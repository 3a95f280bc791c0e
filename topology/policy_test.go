package topology_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"hybridlab/topology"
)

const policyLab = `name: hly
bridge: hlybr0
subnet: 10.0.11.0/24
management: {subnet: 10.0.12.0/24}
vms: [{name: vm1}, {name: vm2, role: docker}]
containers: [{name: web}, {name: db}]
policies:
  default: deny
  log: true
  rules:
    - {name: web-from-vms, from: [{kind: vm}], to: [{node: web}], proto: tcp, ports: [80],
       action: accept}
    - {name: db-from-web, from: [{node: web}], to: [{node: db}], proto: tcp,
       ports: ["8000-8100", 5432], action: accept, log: true}
    - {name: lab-to-host, from: [{cidr: 10.0.11.252/30}, {role: docker}], to: [host],
       action: reject, counter: false}
    - {name: host-out, from: [host], to: [{kind: container}, {node: web}], proto: icmp,
       action: drop}
`

func policyPlan(t *testing.T) (*topology.Plan, *topology.Policies) {
	t.Helper()
	lab, err := topology.Parse([]byte(policyLab))
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	return p, lab.Policies
}

func TestResolvePolicies(t *testing.T) {
	p, pol := policyPlan(t)
	rules, err := topology.ResolvePolicies(p, pol)
	if err != nil {
		t.Fatal(err)
	}
	if !pol.DefaultDeny() || !pol.Log {
		t.Errorf("default deny %v, log %v; want true, true", pol.DefaultDeny(), pol.Log)
	}
	var got []string
	for _, r := range rules {
		got = append(got, fmt.Sprintf("%s: %s -> %s %s %v %s counter=%v log=%v", r.Name,
			side(r.From), side(r.To), r.Proto, r.Ports, r.Action, r.Counter, r.Log))
	}
	want := []string{
		"web-from-vms: 10.0.11.10/32,10.0.11.11/32 -> 10.0.11.254/32 tcp [80] accept " +
			"counter=true log=false",
		"db-from-web: 10.0.11.254/32 -> 10.0.11.253/32 tcp [8000-8100 5432] accept " +
			"counter=true log=true",
		"lab-to-host: 10.0.11.11/32,10.0.11.252/30 -> host any [] reject counter=false log=false",
		"host-out: host -> 10.0.11.253/32,10.0.11.254/32 icmp [] drop counter=true log=false",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("resolved:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func side(s topology.AddrSet) string {
	var parts []string
	for _, p := range s.Prefixes {
		parts = append(parts, p.String())
	}
	if s.Host {
		parts = append(parts, "host")
	}
	return strings.Join(parts, ",")
}

func TestResolveNilPolicies(t *testing.T) {
	p, _ := policyPlan(t)
	if rules, err := topology.ResolvePolicies(p, nil); err != nil || rules != nil {
		t.Errorf("ResolvePolicies(nil) = %v, %v; want nothing", rules, err)
	}
}

// A plan that lost a node the policies name (say, built from another lab)
// fails resolution instead of silently matching nothing.
func TestResolveAgainstOtherPlan(t *testing.T) {
	_, pol := policyPlan(t)
	op, err := topology.PlanYAML([]byte("name: o\nsubnet: 10.0.11.0/24\nbridge: hlybr1\n" +
		"management: {subnet: 10.0.12.0/24}\ncontainers: [{name: x}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = topology.ResolvePolicies(op, pol)
	if !errors.Is(err, topology.ErrInvalid) || !strings.Contains(err.Error(),
		`policy rule "web-from-vms": from: kind vm selects no node`) {
		t.Errorf("err = %v", err)
	}
}

func TestPolicySelectorForms(t *testing.T) {
	lab, err := topology.Parse([]byte(`name: t
subnet: 10.0.1.0/24
containers: [{name: web}]
policies:
  rules:
    - name: all
      from: [host, {cidr: 10.0.1.0/28}, {kind: container}, {role: container}, {node: web}]
      to: [host]
      action: drop
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topology.NewPlan(lab); err != nil {
		t.Fatal(err)
	}
	sel := lab.Policies.Rules[0].From
	var got []string
	for _, s := range sel {
		got = append(got, s.String())
	}
	want := "host,cidr 10.0.1.0/28,kind container,role container,node web"
	if strings.Join(got, ",") != want {
		t.Errorf("selectors %q, want %q", strings.Join(got, ","), want)
	}
	if !lab.Policies.Rules[0].Counts() {
		t.Error("a rule without counter: does not count; want counting by default")
	}
}

// The default lab has no policies, and a lab's policies survive the
// defaults unchanged.
func TestDefaultLabHasNoPolicies(t *testing.T) {
	lab, err := topology.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if lab.Policies != nil || lab.WithDefaults().Policies != nil {
		t.Error("default lab declares policies")
	}
}

// Policies written out as JSON (state files, `setup plan`) read back the
// same.
func TestPoliciesRoundTrip(t *testing.T) {
	p, pol := policyPlan(t)
	data, err := json.Marshal(map[string]any{"policies": pol})
	if err != nil {
		t.Fatal(err)
	}
	lab, err := topology.Parse(data)
	if err != nil {
		t.Fatalf("parse %s: %v", data, err)
	}
	a, errA := topology.ResolvePolicies(p, pol)
	b, errB := topology.ResolvePolicies(p, lab.Policies)
	if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("round trip through %s changed the rules:\n%+v\n%+v (%v, %v)", data, a, b,
			errA, errB)
	}
}
