package guard

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

func testPlan(t *testing.T) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(`name: hlt
bridge: hltbr0
subnet: 10.77.1.0/24
management:
  subnet: 10.77.9.0/24
  bridge: hltmgmt0
containers:
  - name: c1
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesFromPlan(t *testing.T) {
	spec := SpecFromPlan(testPlan(t), false)
	golden(t, "rules.golden", renderSpec(spec.withDefaults()))
}

func TestRulesWithEgressAllowedAndIPv6(t *testing.T) {
	spec := Spec{
		Lab:     "hlt",
		Bridges: []string{"hltbr0"},
		Subnets: []netip.Prefix{
			netip.MustParsePrefix("10.77.1.7/24"), netip.MustParsePrefix("fd00:77:1::/64"),
		},
		AllowEgress: true,
	}
	golden(t, "rules-allow-egress-v6.golden", renderSpec(spec.withDefaults()))
}

func TestSpecFromPlan(t *testing.T) {
	s := SpecFromPlan(testPlan(t), true)
	if s.Lab != "hlt" || s.Table != "hybridlab_hlt" || !s.AllowEgress ||
		strings.Join(s.Bridges, ",") != "hltbr0,hltmgmt0" ||
		len(s.Subnets) != 2 || s.Subnets[0].String() != "10.77.1.0/24" {
		t.Errorf("SpecFromPlan = %+v", s)
	}
	if err := s.validate(); err != nil {
		t.Error(err)
	}
}

func TestValidate(t *testing.T) {
	err := Spec{Table: "labguard", Bridges: []string{"a-name-of-16-byt"}}.validate()
	if !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("validate = %v, want ErrInvalidSpec", err)
	}
	for _, want := range []string{"lab name is empty", `table "labguard"`, "1-15 bytes",
		"no lab subnet"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestExplain(t *testing.T) {
	cases := []struct {
		name string
		st   State
		want []string
	}{{
		name: "missing table, FORWARD drop without DOCKER-USER",
		st: State{
			Table: "hybridlab_hlt", NFCallIPTables: true,
			DockerUser: []DockerUserStatus{{Family: "ip", ForwardPolicy: "drop"}},
		},
		want: []string{"table inet hybridlab_hlt is missing",
			"ip filter FORWARD policy is drop and bridge-nf-call-iptables=1 but there is no " +
				"DOCKER-USER chain: bridged lab traffic is dropped (faults B01/B02)"},
	}, {
		name: "enforcing with docker rule",
		st: State{
			Table: "hybridlab_hlt", Present: true, Enforcing: true,
			Rules: []RuleStatus{{Family: "inet", Counted: true, Packets: 3}},
			DockerUser: []DockerUserStatus{
				{Family: "ip", Chain: true, Rules: []RuleStatus{{Packets: 12}}},
				{Family: "ip6"},
			},
		},
		want: []string{"drops lab traffic leaving through other interfaces (3 packets dropped)",
			"ip filter DOCKER-USER accepts bridged lab traffic (12 packets)"},
	}, {
		name: "no docker",
		st: State{
			Table: "hybridlab_hlt", Present: true,
			DockerUser: []DockerUserStatus{{Family: "ip", ForwardPolicy: "accept"}},
		},
		want: []string{"only counts lab traffic", "ip filter has no DOCKER-USER chain"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := explain(c.st)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("explain = %q\nlacks %q", got, w)
				}
			}
			if strings.Contains(got, "\n") {
				t.Errorf("explanation spans lines: %q", got)
			}
		})
	}
}

func TestRulesFromRoutedPlan(t *testing.T) {
	p, err := topology.PlanYAML([]byte(`name: hlt
bridge: hltbr0
subnet: 10.77.1.0/24
management: {subnet: 10.77.9.0/24, bridge: hltmgmt0}
segments:
  - {name: far, bridge: hltbr1, subnet: 10.77.5.0/24}
containers: [{name: c1}, {name: c2, segment: far}]
`))
	if err != nil {
		t.Fatal(err)
	}
	spec := SpecFromPlan(p, false)
	if got := strings.Join(spec.Bridges, ","); got != "hltbr0,hltbr1,hltmgmt0" {
		t.Errorf("bridges = %s", got)
	}
	golden(t, "rules-routed.golden", renderSpec(spec.withDefaults()))
}
