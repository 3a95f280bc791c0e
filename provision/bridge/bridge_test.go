package bridge

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"hybridlab/topology"
)

func testSpec() BridgeSpec {
	mac, _ := net.ParseMAC("02:68:0a:00:01:01")
	return BridgeSpec{
		Lab: "hybrid", Name: "br-hybrid", MAC: mac, MTU: 1500,
		Address: netip.MustParsePrefix("10.0.1.1/24"),
	}
}

func matching() Status {
	return Status{
		Name: "br-hybrid", MTU: 1500, MAC: "02:68:0a:00:01:01",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.1/24")},
	}
}

func TestMismatchMessages(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Status)
		want   string
	}{{
		name:   "mtu",
		change: func(s *Status) { s.MTU = 9000 },
		want: `bridge "br-hybrid" exists with mtu 9000, the plan wants 1500: ` +
			`remove it (ip link del br-hybrid) or set mtu: 9000 in lab.yaml`,
	}, {
		name:   "stp",
		change: func(s *Status) { s.STP = true },
		want: `bridge "br-hybrid" exists with stp on, the plan wants off: turn it off ` +
			`(ip link set br-hybrid type bridge stp_state 0) or remove it (ip link del br-hybrid)`,
	}, {
		name:   "stp with forward delay",
		change: func(s *Status) { s.STP = true; s.ForwardDelay = 15 * time.Second },
		want: `bridge "br-hybrid" exists with settings the plan does not want: stp on, the ` +
			`plan wants off: turn it off (ip link set br-hybrid type bridge stp_state 0) or ` +
			`remove it (ip link del br-hybrid); forward_delay 1500 (15s), the plan wants 0: ` +
			`set it (ip link set br-hybrid type bridge forward_delay 0) ` +
			`or remove it (ip link del br-hybrid)`,
	}, {
		name:   "mac",
		change: func(s *Status) { s.MAC = "9a:61:00:00:00:01" },
		want: `bridge "br-hybrid" exists with mac 9a:61:00:00:00:01, the plan wants ` +
			`02:68:0a:00:01:01: set it (ip link set br-hybrid address 02:68:0a:00:01:01) ` +
			`or remove it (ip link del br-hybrid)`,
	}, {
		name:   "missing address",
		change: func(s *Status) { s.Addresses = nil },
		want: `bridge "br-hybrid" exists with address (none), the plan wants 10.0.1.1/24: ` +
			`add it (ip addr add 10.0.1.1/24 dev br-hybrid) or remove the bridge ` +
			`(ip link del br-hybrid)`,
	}, {
		name: "other address",
		change: func(s *Status) {
			s.Addresses = []netip.Prefix{netip.MustParsePrefix("10.0.5.1/24")}
		},
		want: `bridge "br-hybrid" exists with address 10.0.5.1/24, the plan wants ` +
			`10.0.1.1/24: remove the bridge (ip link del br-hybrid) or set subnet: ` +
			`10.0.5.0/24 and gateway: 10.0.5.1 in lab.yaml`,
	}, {
		name: "extra address",
		change: func(s *Status) {
			s.Addresses = append(s.Addresses, netip.MustParsePrefix("192.0.2.1/24"))
		},
		want: `bridge "br-hybrid" exists with address 192.0.2.1/24, the plan wants only ` +
			`10.0.1.1/24: remove it (ip addr del 192.0.2.1/24 dev br-hybrid)`,
	}, {
		name:   "two differences",
		change: func(s *Status) { s.MTU = 9000; s.STP = true },
		want: `bridge "br-hybrid" exists with settings the plan does not want: ` +
			`mtu 9000, the plan wants 1500: remove it (ip link del br-hybrid) or set ` +
			`mtu: 9000 in lab.yaml; stp on, the plan wants off: turn it off (ip link set ` +
			`br-hybrid type bridge stp_state 0) or remove it (ip link del br-hybrid)`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			have := matching()
			c.change(&have)
			d := diff(testSpec(), have)
			err := error(&MismatchError{Name: "br-hybrid", Diffs: d})
			if got := err.Error(); got != c.want {
				t.Errorf("message:\n got %s\nwant %s", got, c.want)
			}
			if !errors.Is(err, ErrMismatch) {
				t.Errorf("errors.Is(err, ErrMismatch) = false")
			}
		})
	}
}

func TestDiffAcceptsMatchingBridge(t *testing.T) {
	have := matching()
	have.Addresses = append(have.Addresses, netip.MustParsePrefix("fe80::68:aff:fe00:101/64"))
	have.MAC = "02:68:0A:00:01:01"
	// Docker's and iproute2's default; without STP it delays nothing.
	have.ForwardDelay = 15 * time.Second
	if d := diff(testSpec(), have); len(d) != 0 {
		t.Errorf("diff of a matching bridge = %v, want none", d)
	}
}

func TestDiffIPv6(t *testing.T) {
	spec := testSpec()
	spec.IPv6 = []netip.Prefix{netip.MustParsePrefix("fd00:77::1/64")}
	d := diff(spec, matching())
	if len(d) != 1 || d[0].Want != "fd00:77::1/64" || d[0].Have != "(none)" {
		t.Fatalf("diff = %v, want one missing fd00:77::1/64", d)
	}
}

func TestNotBridgeMessage(t *testing.T) {
	err := notBridgeError("br-hybrid", "veth")
	want := `link is not a bridge: link "br-hybrid" exists and is a veth, not a bridge: ` +
		`remove it (ip link del br-hybrid) or choose another bridge name in lab.yaml`
	if err.Error() != want || !errors.Is(err, ErrNotBridge) {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestSnapshotDiff(t *testing.T) {
	before := matching()
	after := matching()
	if b, a := before.Snapshot(), after.Snapshot(); b != a || b.Diff(a) != nil {
		t.Fatalf("equal statuses give different snapshots: %v", b.Diff(a))
	}
	after.Addresses = nil
	after.NFCallIPTables = true
	got := before.Snapshot().Diff(after.Snapshot())
	want := []string{
		"addresses changed from 10.0.1.1/24 to (none)",
		"nf_call_iptables changed from off to on",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff = %q, want %q", got, want)
	}
}

func TestSpecFromPlan(t *testing.T) {
	plan, err := topology.PlanYAML([]byte("name: hlt\nbridge: hltbr0\nsubnet: 10.77.0.0/24\n" +
		"mtu: 1400\ncontainers:\n  - name: c1\n"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := SpecFromPlan(plan)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Name != "hltbr0" || spec.Lab != "hlt" || spec.MTU != 1400 ||
		spec.Address.String() != "10.77.0.1/24" || spec.MAC.String() != plan.Bridge.MAC {
		t.Errorf("SpecFromPlan = %+v", spec)
	}
	if err := spec.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	err := BridgeSpec{Name: "a-name-of-16-byt"}.validate()
	if err == nil {
		t.Fatal("validate accepted an empty spec")
	}
	for _, want := range []string{"1-15 bytes", "lab name", "mac", "mtu 0", "gateway"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestGuessOwner(t *testing.T) {
	cases := map[[2]string]string{
		{"veth1a2b", "veth"}: "container",
		{"vnet3", "tun"}:     "vm",
		{"vnet3", ""}:        "vm",
		{"eth1", "dummy"}:    "",
	}
	for in, want := range cases {
		if got := guessOwner(in[0], in[1]); got != want {
			t.Errorf("guessOwner(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}
