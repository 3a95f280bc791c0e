package doctor

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseIptables(t *testing.T) {
	out := `-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-USER
-A FORWARD -j DOCKER-USER
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 -j ACCEPT
-A DOCKER-USER -j RETURN
`
	got := parseIptables(out)
	want := Firewall{Read: true, ForwardPolicy: "DROP", DockerUser: true, Rules: []string{
		"-A FORWARD -j DOCKER-USER", "-A FORWARD -i docker0 -o docker0 -j ACCEPT",
		"-A DOCKER-USER -j RETURN",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestBridgeAccept(t *testing.T) {
	cases := map[string]bool{
		"-A DOCKER-USER -i hld0 -o hld0 -j ACCEPT":                                      true,
		"-A FORWARD -i hld0 -o hld0 -j ACCEPT":                                          true,
		`-A DOCKER-USER -i hld0 -o hld0 -m comment --comment "hybridlab hld" -j ACCEPT`: true,
		"-A DOCKER-USER -i hld0 -o hld0 -m comment --comment lab -j ACCEPT":             true,
		"-A DOCKER-USER -i hld0 -j ACCEPT":                                              false,
		"-A FORWARD -i hld0 ! -o hld0 -j ACCEPT":                                        false,
		"-A FORWARD -i hld0 -o hld0 -j DROP":                                            false,
		"-A FORWARD -i hld0 -o hld0 -m conntrack --ctstate RELATED -j ACCEPT":           false,
		"-A DOCKER -i hld0 -o hld0 -j ACCEPT":                                           false,
		"-A FORWARD -i hld01 -o hld01 -j ACCEPT":                                        false,
	}
	for rule, want := range cases {
		rules := []string{"-A FORWARD -j DOCKER-USER", rule}
		if got := bridgeAccept(rules, "hld0") != ""; got != want {
			t.Errorf("%s: accept = %v, want %v", rule, got, want)
		}
	}
}

func TestBridgeAcceptIgnoresDeadRules(t *testing.T) {
	dead := map[string][]string{
		"after RETURN": {"-A FORWARD -j DOCKER-USER", "-A DOCKER-USER -j RETURN",
			"-A DOCKER-USER -i hld0 -o hld0 -j ACCEPT"},
		"no jump to DOCKER-USER": {"-A DOCKER-USER -i hld0 -o hld0 -j ACCEPT"},
		"after DROP":             {"-A FORWARD -j DROP", "-A FORWARD -i hld0 -o hld0 -j ACCEPT"},
	}
	for name, rules := range dead {
		if r := bridgeAccept(rules, "hld0"); r != "" {
			t.Errorf("%s: counted dead rule %q", name, r)
		}
	}
	live := []string{"-A FORWARD -j DOCKER-USER", "-A DOCKER-USER -i hld0 -o hld0 -j ACCEPT",
		"-A DOCKER-USER -j RETURN"}
	if bridgeAccept(live, "hld0") == "" {
		t.Error("missed the accept inserted before RETURN")
	}
}

func TestLegacyRules(t *testing.T) {
	out := "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-A INPUT -s 10.0.6.0/24 -j DROP\n"
	got := legacyRules("filter", out)
	want := []string{"-t filter -P FORWARD DROP", "-t filter -A INPUT -s 10.0.6.0/24 -j DROP"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := legacyRules("filter", "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n"); got != nil {
		t.Fatalf("empty legacy table gave %q", got)
	}
}

func TestParseProcNet(t *testing.T) {
	udp := readTestdata(t, "proc_net_udp")
	got, err := parseProcNet(udp)
	if err != nil {
		t.Fatal(err)
	}
	want := []sockEntry{
		{local: netip.MustParseAddrPort("10.0.6.1:53"), state: "07", inode: 41234},
		{local: netip.MustParseAddrPort("0.0.0.0:53"), state: "07", inode: 41235},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	tcp6 := readTestdata(t, "proc_net_tcp6")
	got, err = parseProcNet(tcp6)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].local != netip.MustParseAddrPort("[::1]:53") || got[0].state != "0A" {
		t.Fatalf("tcp6: got %+v", got)
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseLeases(t *testing.T) {
	data := `1796400000 52:54:0A:00:06:0a 10.0.6.10 vm1 01:52:54:0a:00:06:0a
1796400001 52:54:0a:00:06:0b 10.0.6.11 * *
duid 00:01:00:01:2c:aa:bb:cc
1796400002 1 fd00::10 vm1 00:01:00:01
`
	got, err := parseLeases(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Lease{
		{Expiry: 1796400000, MAC: "52:54:0a:00:06:0a", IP: netip.MustParseAddr("10.0.6.10"),
			Hostname: "vm1", ClientID: "01:52:54:0a:00:06:0a"},
		{Expiry: 1796400001, MAC: "52:54:0a:00:06:0b", IP: netip.MustParseAddr("10.0.6.11")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := parseLeases("1796400000 52:54:00:00:00:01\n"); err == nil {
		t.Fatal("short lease line accepted")
	}
}

func TestParseNetXML(t *testing.T) {
	x := `<network>
  <name>vagrant-libvirt</name>
  <uuid>9b1a0bd5-6a4a-4bd6-a1c4-000000000000</uuid>
  <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
  <bridge name='virbr1' stp='on' delay='0'/>
  <ip address='192.168.121.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.121.2' end='192.168.121.254'/></dhcp>
  </ip>
  <ip family='ipv6' address='fd00:121::1' prefix='64'/>
</network>`
	got, err := parseNetXML([]byte(x))
	if err != nil {
		t.Fatal(err)
	}
	want := LibvirtNetwork{Name: "vagrant-libvirt", Bridge: "virbr1", Forward: "nat",
		Prefixes: []netip.Prefix{netip.MustParsePrefix("192.168.121.1/24"),
			netip.MustParsePrefix("fd00:121::1/64")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestWrap(t *testing.T) {
	got := wrap("ip link set hld0 type bridge stp_state 0 forward_delay 0", 20)
	want := []string{"ip link set hld0", "type bridge", "stp_state 0", "forward_delay 0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
