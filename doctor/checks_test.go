package doctor

import (
	"fmt"
	"strings"
	"testing"

	"hybridlab/topology"
)

// want is the part of a finding a test pins down.
type want struct {
	sev    Severity
	object string
	fix    string
}

const leaseFix = "delete the line for %s from /var/lib/hybridlab/hld/dnsmasq.leases, run " +
	"`go run ./setup up` (restarts dnsmasq with the plan's reservations), then renew DHCP " +
	"in the guest"

var checkCases = []struct {
	name   string
	check  string
	state  string
	mutate func(p *topology.Plan, s *HostState)
	want   []want
}{
	{
		name: "v4 FORWARD DROP with br_netfilter and no lab accept", check: IDForwardDrop,
		state: "bad/forward_drop_v4.json",
		want: []want{{Error, "iptables FORWARD / hld0",
			"iptables -I DOCKER-USER -i hld0 -o hld0 -j ACCEPT"}},
	},
	{
		name: "v6 FORWARD DROP is judged apart from a working v4", check: IDForwardDrop,
		state: "bad/forward_drop_v6.json",
		want: []want{{Error, "ip6tables FORWARD / hld0",
			"ip6tables -I DOCKER-USER -i hld0 -o hld0 -j ACCEPT"}},
	},
	{
		name: "per-bridge nf_call before up without Docker", check: IDForwardDrop,
		state: "bad/forward_drop_perbridge.json",
		want: []want{{Warn, "iptables FORWARD / hld0",
			"`go run ./setup up` installs it; by hand: iptables -I FORWARD -i hld0 -o hld0 -j ACCEPT"}},
	},
	{
		name: "br_netfilter off leaves bridged traffic alone", check: IDForwardDrop,
		state: "bad/forward_drop_v4.json",
		mutate: func(_ *topology.Plan, s *HostState) {
			s.BrNF = BrNF{CallIptables: 0, CallIP6tables: 0}
		},
	},
	{
		name: "legacy rules next to nftables", check: IDIptablesMixed,
		state: "bad/iptables_mixed.json",
		want: []want{{Warn, "iptables-legacy", "iptables-legacy-save > legacy4.rules && " +
			"iptables-restore-translate -f legacy4.rules | nft -f - && " +
			"iptables-legacy -t filter -F && iptables-legacy -t filter -X"}},
	},
	{
		name: "foreign nft drops; own guard and iptables tables ignored", check: IDNFTForeignDrop,
		state: "bad/nft_foreign_drop.json",
		want: []want{
			{Error, "nft inet fw forward", `nft insert rule inet fw forward iifname "hld0" ` +
				`oifname "hld0" accept (or remove the table: nft delete table inet fw)`},
			{Error, "nft inet fw input", `nft insert rule inet fw input iifname "hld0" ` +
				`accept (or remove the table: nft delete table inet fw)`},
			{Error, "nft bridge l2 fwd", `nft delete rule bridge l2 fwd handle 3 ` +
				`(or remove the table: nft delete table bridge l2)`},
			{Error, "nft ip lan in", `nft insert rule ip lan in iifname "hld0" accept ` +
				`(or remove the table: nft delete table ip lan)`},
		},
	},
	{
		name:  "inet forward drop is harmless when bridged frames skip IP hooks",
		check: IDNFTForeignDrop, state: "bad/nft_foreign_drop.json",
		mutate: func(_ *topology.Plan, s *HostState) {
			s.BrNF = BrNF{CallIptables: 0}
			s.NFT = s.NFT[:3]
		},
	},
	{
		name:  "addresses, routes, Docker and libvirt networks in the lab subnet",
		check: IDSubnetOverlap, state: "bad/subnet_overlap.json",
		want: []want{
			{Error, "address 10.0.6.77/24 on hlddummy", "set `subnet: 172.16.0.0/24` in " +
				"lab.yaml, or remove the owner: ip addr del 10.0.6.77/24 dev hlddummy"},
			{Warn, "route 10.0.0.0/8 dev tun0", "set `subnet: 172.16.0.0/24` in lab.yaml, " +
				"or remove the owner: ip route del 10.0.0.0/8 dev tun0"},
			{Error, `Docker network "other" (10.0.6.128/25, bridge br-b2)`, "set `subnet: " +
				"172.16.0.0/24` in lab.yaml, or remove the owner: docker network rm other"},
			{Warn, `libvirt network "hldvirt" (10.0.6.1/24, bridge virbr9, inactive)`,
				"set `subnet: 172.16.0.0/24` in lab.yaml, or remove the owner: " +
					"virsh -c qemu:///system net-destroy hldvirt"},
		},
	},
	{
		name:  "management subnet taken by Docker and another libvirt network",
		check: IDMgmtOverlap, state: "bad/mgmt_overlap.json",
		want: []want{
			{Error, `Docker network "mgmtclash" (10.66.0.0/16, bridge br-c3)`,
				"set `management: {subnet: 10.0.0.0/24}` in lab.yaml, or remove the owner: " +
					"docker network rm mgmtclash"},
			{Error, `libvirt network "vagrant-libvirt" (10.66.1.1/24, bridge virbr1, active)`,
				"set `management: {subnet: 10.0.0.0/24}` in lab.yaml, or remove the owner: " +
					"virsh -c qemu:///system net-destroy vagrant-libvirt"},
		},
	},
	{
		name: "management subnet inside the lab subnet", check: IDMgmtOverlap,
		state: "good.json",
		mutate: func(p *topology.Plan, _ *HostState) {
			p.Management.Subnet = p.Subnet
		},
		want: []want{{Error, "lab subnet 10.0.6.0/24",
			"set `management: {subnet: 10.0.0.0/24}` in lab.yaml"}},
	},
	{
		name: "16-byte bridge name and long Docker bridge option", check: IDIfnameTooLong,
		state: "bad/ifname.json",
		mutate: func(p *topology.Plan, _ *HostState) {
			p.Bridge.Name = "hld-bridge-16byt"
		},
		want: []want{
			{Error, "bridge hld-bridge-16byt",
				"set `bridge: hld-bridge-16by` in lab.yaml (at most 15 bytes)"},
			{Error, "Docker network hld-net com.docker.network.bridge.name hld-docker-bridge0",
				"docker network rm hld-net && go run ./setup up (recreates it on the plan's bridge)"},
		},
	},
	{
		name: "bridge and port MTU differ from the plan", check: IDMTUMismatch,
		state: "bad/mtu.json",
		want: []want{
			{Warn, "bridge hld0", "ip link set hld0 mtu 1500 (or set `mtu: 1400` in lab.yaml)"},
			{Error, "port vnet0 of hld0", "ip link set vnet0 mtu 1500"},
		},
	},
	{
		name: "STP on with forward delay on the lab bridge only", check: IDSTPDelay,
		state: "bad/stp.json",
		want: []want{{Warn, "bridge hld0",
			"ip link set hld0 type bridge stp_state 0"}},
	},
	{
		name: "TCG is a warning with the reason", check: IDAccel, state: "bad/accel_tcg.json",
		want: []want{{Warn, "accelerator", "boot VMs one at a time; for KVM, make /dev/kvm " +
			"usable and check `virsh -c qemu:///system domcapabilities --virttype kvm`"}},
	},
	{
		name: "KVM is a note", check: IDAccel, state: "good.json",
		want: []want{{Info, "accelerator", ""}},
	},
	{
		name: "port 53 on the wildcard or gateway held by others", check: IDDNSPortTaken,
		state: "bad/dns_port.json",
		want: []want{
			{Error, "named (pid 555)", "make it listen on its own addresses only " +
				"(not 0.0.0.0 or 10.0.6.1), or stop it: kill 555"},
			{Error, "named (pid 555)", "make it listen on its own addresses only " +
				"(not 0.0.0.0 or 10.0.6.1), or stop it: kill 555"},
			{Error, "dnsmasq (pid 600)",
				"run that dnsmasq with --bind-interfaces --except-interface=hld0, or stop it: kill 600"},
			{Error, "an unknown process", "make it listen on its own addresses only " +
				"(not 0.0.0.0 or 10.0.6.1), or find it with `ss -lunp 'sport = 53'` and stop it"},
		},
	},
	{
		name: "IPv6 off while the lab wants it", check: IDIPv6Disabled, state: "bad/ipv6.json",
		want: []want{{Error, "host IPv6", "sysctl -w net.ipv6.conf.all.disable_ipv6=0"}},
	},
	{
		name: "IPv6 absent from the kernel, not wanted", check: IDIPv6Disabled,
		state: "bad/ipv6.json",
		mutate: func(_ *topology.Plan, s *HostState) {
			s.WantIPv6 = false
			s.IPv6Host.Reason = "/proc/sys/net/ipv6 is absent (kernel booted with ipv6.disable=1)"
		},
		want: []want{{Info, "host IPv6",
			"remove ipv6.disable=1 from the kernel command line and reboot"}},
	},
	{
		name: "objects of this and another lab before up", check: IDLeftovers,
		state: "bad/leftovers_before.json",
		want: []want{
			{Warn, "lab hld", "go run ./setup down (or by hand: ip link del hld0; " +
				"ip link del hld-x1; nft delete table inet hybridlab_hld; docker rm -f hld-web; " +
				"docker network rm hld-net; virsh -c qemu:///system net-destroy hld-mgmt; " +
				"virsh -c qemu:///system net-undefine hld-mgmt; " +
				"virsh -c qemu:///system destroy hld-vm1; " +
				"virsh -c qemu:///system undefine hld-vm1 --remove-all-storage; " +
				"rm /var/lib/hybridlab/hld/dnsmasq.pid)"},
			{Info, "lab other", "if lab other is not running: go run ./setup down -f <its lab file> " +
				"(or by hand: ip link del br-other)"},
		},
	},
	{
		name: "a container the running plan no longer has", check: IDLeftovers,
		state: "bad/leftovers_running.json",
		want: []want{{Warn, "lab hld", "go run ./setup down (or by hand: docker rm -f hld-old; " +
			"virsh -c qemu:///system destroy hld-vm3; " +
			"virsh -c qemu:///system undefine hld-vm3 --remove-all-storage)"}},
	},
	{
		name: "leases off the plan", check: IDLeaseDrift, state: "bad/lease_drift.json",
		want: []want{
			{Error, "vm1 52:54:0a:00:06:0a", fmt.Sprintf(leaseFix, "52:54:0a:00:06:0a")},
			{Error, "MAC 52:54:00:de:ad:01", fmt.Sprintf(leaseFix, "52:54:00:de:ad:01")},
			{Warn, "MAC 52:54:00:de:ad:02", fmt.Sprintf(leaseFix, "52:54:00:de:ad:02")},
			{Error, "IP 10.0.6.11", "stop all but one of 52:54:0a:00:06:0b, " +
				"52:54:00:de:ad:01, then `go run ./setup up`"},
			{Error, "client-id 01:aa", "give each guest its own machine-id: `sudo rm " +
				"/etc/machine-id && sudo systemd-machine-id-setup` in each, and keep " +
				"/etc/machine-id empty in the box"},
		},
	},
	{
		name: "endpoints and network off the plan", check: IDEndpointDrift,
		state: "bad/endpoint_drift.json",
		want: []want{
			{Error, "Docker network hld-net", "docker network rm hld-net && go run ./setup up"},
			{Error, "container hld-web", "docker rm -f hld-web && go run ./setup up"},
			{Error, "container hld-db", "ip link set veth4d5e6f master hld0"},
		},
	},
	{
		name: "bridge stripped since up", check: IDBridgeChanged, state: "bad/bridge_changed.json",
		want: []want{{Error, "bridge hld0", "ip addr add 10.0.6.1/24 dev hld0 && ip link set " +
			"hld0 address 02:68:0a:00:06:01 && ip link set hld0 type bridge nf_call_iptables 0"}},
	},
	{
		name: "bridge gone since up", check: IDBridgeChanged, state: "bad/bridge_changed.json",
		mutate: func(_ *topology.Plan, s *HostState) { s.Bridges = nil },
		want:   []want{{Error, "bridge hld0", "go run ./setup up"}},
	},
	{
		name: "a source that could not be read", check: IDCollect, state: "bad/collect.json",
		want: []want{{Warn, "docker",
			"run `go run ./setup doctor` as root with the daemon for docker running"}},
	},
}

func TestChecks(t *testing.T) {
	for _, tc := range checkCases {
		t.Run(tc.name, func(t *testing.T) {
			plan := testPlan(t)
			s := loadState(t, tc.state)
			if tc.mutate != nil {
				tc.mutate(plan, s)
			}
			got := checkByID(t, tc.check).Run(plan, s)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), dump(got))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.ID != tc.check || g.Severity != w.sev || g.Object != w.object || g.Fix != w.fix {
					t.Errorf("finding %d:\n got %s %s %q\n   fix %q\nwant %s %s %q\n   fix %q",
						i, g.ID, g.Severity, g.Object, g.Fix, tc.check, w.sev, w.object, w.fix)
				}
				if g.Evidence == "" || (g.Severity != Info && g.Cost == "") {
					t.Errorf("finding %d lacks evidence or cost: %+v", i, g)
				}
			}
		})
	}
}

// TestGoodState runs every check on a healthy running lab: the only finding
// is the note that KVM is usable.
func TestGoodState(t *testing.T) {
	got := Run(testPlan(t), loadState(t, "good.json"))
	if len(got) != 1 || got[0].ID != IDAccel || got[0].Severity != Info {
		t.Fatalf("healthy lab gave findings:\n%s", dump(got))
	}
}

// TestEveryCheckHasABadState keeps the table honest: each registered check
// is shown producing a finding.
func TestEveryCheckHasABadState(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range checkCases {
		if len(tc.want) > 0 {
			covered[tc.check] = true
		}
	}
	for _, tc := range routedCases {
		if len(tc.want) > 0 {
			covered[tc.check] = true
		}
	}
	for _, c := range Checks {
		if !covered[c.ID] {
			t.Errorf("check %s has no case producing a finding", c.ID)
		}
	}
}

func TestEvidenceNamesLeaseDetails(t *testing.T) {
	got := checkLeaseDrift(testPlan(t), loadState(t, "bad/lease_drift.json"))
	ev := got[0].Evidence
	for _, s := range []string{
		"vm1", "52:54:0a:00:06:0a", "expected IP 10.0.6.10", "seen IP 10.0.6.50",
	} {
		if !strings.Contains(ev, s) {
			t.Errorf("evidence %q lacks %q", ev, s)
		}
	}
}

func TestRunOrdersBySeverity(t *testing.T) {
	s := loadState(t, "bad/mtu.json")
	got := Run(testPlan(t), s)
	for i := 1; i < len(got); i++ {
		if got[i-1].Severity.rank() > got[i].Severity.rank() {
			t.Fatalf("not ordered by severity:\n%s", dump(got))
		}
	}
	if Worst(got) != Error {
		t.Fatalf("worst = %q, want error", Worst(got))
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s %q: %s | fix %q\n", f.Severity, f.ID, f.Object, f.Evidence, f.Fix)
	}
	return b.String()
}
