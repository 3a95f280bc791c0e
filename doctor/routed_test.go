package doctor

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hybridlab/topology"
)

// routedPlan is the plan of testdata/routed/lab.yaml: segment main on hld0
// (10.0.6.0/24) and segment edge on hld1 (10.0.7.0/24).
func routedPlan(t *testing.T) *topology.Plan {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "routed", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lab, err := topology.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Routed() {
		t.Fatal("routed test lab has one segment")
	}
	return plan
}

// routedState is a healthy running routed lab whose IPv4 filter and nat
// rules are read from captured `iptables -S` and `iptables -t nat -S
// POSTROUTING` output.
func routedState(t *testing.T, filter, nat string) *HostState {
	t.Helper()
	s := loadState(t, "routed/good.json")
	s.IPv4 = parseIptables(readTestdata(t, "routed/"+filter))
	s.IPv4.NAT = parseNAT(readTestdata(t, "routed/"+nat))
	s.IPv4.NATRead = true
	return s
}

func TestRoutedGoodState(t *testing.T) {
	s := routedState(t, "iptables_guarded.txt", "nat_unmasqueraded.txt")
	rep := NewReport(routedPlan(t), s)
	if len(rep.Findings) != 1 || rep.Findings[0].ID != IDAccel {
		t.Fatalf("healthy routed lab gave findings:\n%s", dump(rep.Findings))
	}
	if strings.Join(rep.Bridges, ",") != "hld0,hld1" || rep.Bridge != "hld0" {
		t.Fatalf("report names bridge %q and bridges %q", rep.Bridge, rep.Bridges)
	}
}

const snatExc = "iptables -t nat -I POSTROUTING -s %s -d %s -j RETURN"

var routedCases = []struct {
	name          string
	check         string
	filter, nat   string
	mutate        func(p *topology.Plan, s *HostState)
	want          []want
	wantEvidences []string
}{
	{
		name: "ip_forward off while the lab runs", check: IDIPForward,
		mutate: func(_ *topology.Plan, s *HostState) { s.IPForward = ptr(0) },
		want: []want{{Error, "net.ipv4.ip_forward",
			"sysctl -w net.ipv4.ip_forward=1 (or run `go run ./setup up` again, which sets it)"}},
		wantEvidences: []string{"net.ipv4.ip_forward=0", "hld0, hld1"},
	},
	{
		name: "ip_forward off before up", check: IDIPForward,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.IPForward, s.Phase = ptr(0), PhaseBefore
		},
		want: []want{{Warn, "net.ipv4.ip_forward",
			"`go run ./setup up` sets it; by hand: sysctl -w net.ipv4.ip_forward=1"}},
	},
	{
		name: "ip_forward unread is left to COLLECT", check: IDIPForward,
		mutate: func(_ *topology.Plan, s *HostState) { s.IPForward = nil },
	},
	{
		name: "only the same-bridge accepts of a one-bridge guard", check: IDSegmentForward,
		filter: "iptables_same_bridge_only.txt",
		want: []want{
			{Error, "iptables DOCKER-USER / hld0 -> hld1", "run `go run ./setup up` again " +
				"(the guard puts it back), or by hand: iptables -I DOCKER-USER -i hld0 " +
				`-o hld1 -m comment --comment "hybridlab:hld" -j ACCEPT`},
			{Error, "iptables DOCKER-USER / hld1 -> hld0", "run `go run ./setup up` again " +
				"(the guard puts it back), or by hand: iptables -I DOCKER-USER -i hld1 " +
				`-o hld0 -m comment --comment "hybridlab:hld" -j ACCEPT`},
		},
		wantEvidences: []string{"segment main to segment edge", "segment edge to segment main"},
	},
	{
		name: "pair accepts after DOCKER-USER's RETURN are dead", check: IDSegmentForward,
		mutate: func(_ *topology.Plan, s *HostState) {
			rules := s.IPv4.Rules
			s.IPv4.Rules = append([]string{"-A DOCKER-USER -j RETURN"}, rules...)
		},
		want: []want{
			{Error, "iptables DOCKER-USER / hld0 -> hld1", "run `go run ./setup up` again " +
				"(the guard puts it back), or by hand: iptables -I DOCKER-USER -i hld0 " +
				`-o hld1 -m comment --comment "hybridlab:hld" -j ACCEPT`},
			{Error, "iptables DOCKER-USER / hld1 -> hld0", "run `go run ./setup up` again " +
				"(the guard puts it back), or by hand: iptables -I DOCKER-USER -i hld1 " +
				`-o hld0 -m comment --comment "hybridlab:hld" -j ACCEPT`},
		},
	},
	{
		name: "FORWARD DROP without Docker before up", check: IDSegmentForward,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.IPv4 = Firewall{Read: true, ForwardPolicy: "DROP",
				Rules: []string{"-A FORWARD -i hld1 -o hld0 -j ACCEPT"}}
			s.Phase = PhaseBefore
		},
		want: []want{{Warn, "iptables FORWARD / hld0 -> hld1", "`go run ./setup up` installs " +
			"it; by hand: iptables -I FORWARD -i hld0 -o hld1 -m comment --comment " +
			`"hybridlab:hld" -j ACCEPT`}},
	},
	{
		name: "FORWARD ACCEPT without Docker routes freely", check: IDSegmentForward,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.IPv4 = Firewall{Read: true, ForwardPolicy: "ACCEPT"}
		},
	},
	{
		name: "Docker's default masquerade on both lab networks", check: IDSegmentSNAT,
		nat: "nat_docker_default.txt",
		want: []want{
			{Error, "iptables nat POSTROUTING MASQUERADE (Docker network hld-net)",
				"docker rm -f the containers on hld-net, then docker network rm hld-net && " +
					"go run ./setup up (recreates it with com.docker.network.bridge." +
					"enable_ip_masquerade=false); or by hand: " +
					"iptables -t nat -I POSTROUTING -s 10.0.6.0/24 -d 10.0.7.0/24 -j RETURN"},
			{Error, "iptables nat POSTROUTING MASQUERADE (Docker network hld-edge-net)",
				"docker rm -f the containers on hld-edge-net, then docker network rm " +
					"hld-edge-net && go run ./setup up (recreates it with com.docker.network." +
					"bridge.enable_ip_masquerade=false); or by hand: " +
					"iptables -t nat -I POSTROUTING -s 10.0.7.0/24 -d 10.0.6.0/24 -j RETURN"},
		},
		wantEvidences: []string{"-s 10.0.6.0/24 ! -o hld0 -j MASQUERADE", "(main -> edge)"},
	},
	{
		name: "masquerade with RETURN exceptions for the other segment", check: IDSegmentSNAT,
		nat: "nat_excepted.txt",
	},
	{
		name: "a wide masquerade covering both segments, a narrow exception", check: IDSegmentSNAT,
		nat: "nat_wide.txt",
		want: []want{{Error, "iptables nat POSTROUTING MASQUERADE of 10.0.0.0/8",
			"iptables -t nat -I POSTROUTING -s 10.0.6.0/24 -d 10.0.7.0/24 -j RETURN && " +
				"iptables -t nat -I POSTROUTING -s 10.0.7.0/24 -d 10.0.6.0/24 -j RETURN"}},
		wantEvidences: []string{"(main -> edge, edge -> main)"},
	},
	{
		name: "MTU of the edge bridge names its segment", check: IDMTUMismatch,
		mutate: func(_ *topology.Plan, s *HostState) { s.Bridges[2].Ports[0].MTU = 1400 },
		want: []want{{Error, "port veth7a8b9c of hld1 (segment edge)",
			"ip link set veth7a8b9c mtu 1500"}},
	},
	{
		name:   "IPv6 DOCKER-USER not jumped to: each bridge named with its segment",
		check:  IDForwardDrop,
		mutate: func(_ *topology.Plan, s *HostState) { s.IPv6.Rules = s.IPv6.Rules[2:] },
		want: []want{
			{Error, "ip6tables FORWARD / hld0 (segment main)",
				"ip6tables -I DOCKER-USER -i hld0 -o hld0 -j ACCEPT"},
			{Error, "ip6tables FORWARD / hld1 (segment edge)",
				"ip6tables -I DOCKER-USER -i hld1 -o hld1 -j ACCEPT"},
		},
	},
	{
		name: "edge subnet held by a stray address", check: IDSubnetOverlap,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.Addrs = append(s.Addrs, Addr{Link: "hlgdummy",
				Prefix: netip.MustParsePrefix("10.0.7.50/24")})
		},
		want: []want{{Error, "address 10.0.7.50/24 on hlgdummy (segment edge)",
			"set `subnet: 10.0.0.0/24` of segment edge (under `segments:`) in lab.yaml, " +
				"or remove the owner: ip addr del 10.0.7.50/24 dev hlgdummy"}},
	},
	{
		name: "edge container's veth on the main bridge", check: IDEndpointDrift,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.Docker.Containers[2].Endpoints[0].HostMaster = "hld0"
		},
		want: []want{{Error, "container hld-e1 (segment edge)",
			"ip link set veth7a8b9c master hld1"}},
	},
	{
		name: "edge Docker network bound to the main bridge", check: IDEndpointDrift,
		mutate: func(_ *topology.Plan, s *HostState) { s.Docker.Networks[2].Bridge = "hld0" },
		want: []want{{Error, "Docker network hld-edge-net (segment edge)",
			"docker network rm hld-edge-net && go run ./setup up"}},
	},
	{
		name: "edge bridge stripped since up", check: IDBridgeChanged,
		mutate: func(_ *topology.Plan, s *HostState) { s.Bridges[2].Addrs = nil },
		want:   []want{{Error, "bridge hld1", "ip addr add 10.0.7.1/24 dev hld1"}},
	},
	{
		name: "edge lease off the plan", check: IDLeaseDrift,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.Leases = append(s.Leases, Lease{MAC: "52:54:00:de:ad:07",
				IP: netip.MustParseAddr("10.0.7.20")})
		},
		want: []want{{Warn, "MAC 52:54:00:de:ad:07", "delete the line for 52:54:00:de:ad:07 " +
			"from /var/lib/hybridlab/hld/dnsmasq.leases, run `go run ./setup up` (restarts " +
			"dnsmasq with the plan's reservations), then renew DHCP in the guest"}},
	},
	{
		name: "port 53 of the edge gateway held by another server", check: IDDNSPortTaken,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.Listeners = append(s.Listeners, Listener{Proto: "udp",
				Local: netip.MustParseAddrPort("10.0.7.1:53"), PID: 555, Process: "named"})
		},
		want: []want{{Error, "named (pid 555)", "make it listen on its own addresses only " +
			"(not 0.0.0.0 or 10.0.6.1 or 10.0.7.1), or stop it: kill 555"}},
	},
	{
		name: "edge bridge and network left behind before up", check: IDLeftovers,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.Phase = PhaseBefore
			s.Links, s.NFTTables, s.Libvirt, s.Domains = s.Links[8:9], nil, nil, nil
			s.Docker.Containers, s.Docker.Networks = nil, s.Docker.Networks[2:]
			s.Links[0].Alias = ""
			s.Docker.Networks[0].Labels = nil
		},
		want: []want{{Warn, "lab hld", "go run ./setup down (or by hand: ip link del hld1; " +
			"docker network rm hld-edge-net)"}},
	},
	{
		name: "foreign inet forward drop on the lab subnets", check: IDNFTForeignDrop,
		mutate: func(_ *topology.Plan, s *HostState) {
			s.BrNF = BrNF{}
			s.NFT = append(s.NFT, NFTChain{Family: "inet", Table: "fw", Name: "fwd",
				Hook: "forward", Policy: "accept", Rules: []NFTRule{{Handle: 9,
					Verdict: "drop", Addrs: []netip.Addr{netip.MustParseAddr("10.0.7.254")}}}})
		},
		want: []want{{Error, "nft inet fw fwd", `nft insert rule inet fw fwd iifname "hld0" ` +
			`oifname "hld0" accept && nft insert rule inet fw fwd iifname "hld0" ` +
			`oifname "hld1" accept && nft insert rule inet fw fwd iifname "hld1" ` +
			`oifname "hld0" accept && nft insert rule inet fw fwd iifname "hld1" ` +
			`oifname "hld1" accept (or remove the table: nft delete table inet fw)`}},
	},
}

func TestRoutedChecks(t *testing.T) {
	for _, tc := range routedCases {
		t.Run(tc.name, func(t *testing.T) {
			filter, nat := "iptables_guarded.txt", "nat_unmasqueraded.txt"
			if tc.filter != "" {
				filter = tc.filter
			}
			if tc.nat != "" {
				nat = tc.nat
			}
			plan := routedPlan(t)
			s := routedState(t, filter, nat)
			if tc.mutate != nil {
				tc.mutate(plan, s)
			}
			got := checkByID(t, tc.check).Run(plan, s)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), dump(got))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.ID != tc.check || g.Severity != w.sev || g.Object != w.object ||
					g.Fix != w.fix {
					t.Errorf("finding %d:\n got %s %s %q\n   fix %q\nwant %s %s %q\n   fix %q",
						i, g.ID, g.Severity, g.Object, g.Fix, tc.check, w.sev, w.object, w.fix)
				}
				if g.Evidence == "" || g.Cost == "" {
					t.Errorf("finding %d lacks evidence or cost: %+v", i, g)
				}
			}
			var evidence []string
			for _, g := range got {
				evidence = append(evidence, g.Evidence)
			}
			all := strings.Join(evidence, "\n")
			for _, e := range tc.wantEvidences {
				if !strings.Contains(all, e) {
					t.Errorf("evidence lacks %q:\n%s", e, all)
				}
			}
		})
	}
}

// TestRoutedChecksQuietOnOneSegment keeps the new checks out of a lab of
// one segment, whatever the host's routing state.
func TestRoutedChecksQuietOnOneSegment(t *testing.T) {
	s := loadState(t, "good.json")
	s.IPForward = ptr(0)
	s.IPv4.NAT = parseNAT(readTestdata(t, "routed/nat_docker_default.txt"))
	s.IPv4.NATRead = true
	for _, id := range []string{IDIPForward, IDSegmentForward, IDSegmentSNAT} {
		if got := checkByID(t, id).Run(testPlan(t), s); len(got) != 0 {
			t.Errorf("%s on a one-segment lab:\n%s", id, dump(got))
		}
	}
}

func TestParseNAT(t *testing.T) {
	got := parseNAT(readTestdata(t, "routed/nat_docker_default.txt"))
	if len(got) != 5 || got[0] != "-A POSTROUTING -s 10.0.7.0/24 ! -o hld1 -j MASQUERADE" {
		t.Fatalf("parsed %q", got)
	}
	r, ok := parseNATRule(got[3])
	host := netip.MustParsePrefix("10.0.6.254/32")
	if !ok || r.src != host || r.dst != host || !r.narrow || r.target != "MASQUERADE" {
		t.Fatalf("rule %q read as %+v", got[3], r)
	}
	r, ok = parseNATRule(got[0])
	if !ok || r.out != "hld1" || !r.outNot || r.srcNot || r.narrow {
		t.Fatalf("rule %q read as %+v", got[0], r)
	}
}

func ptr(v int) *int { return &v }
