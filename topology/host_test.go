package topology_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"hybridlab/topology"
)

func np(name, prefix, bridge string) topology.NamedPrefix {
	return topology.NamedPrefix{Name: name, Prefix: netip.MustParsePrefix(prefix), Bridge: bridge}
}

// fakeHost is a host with Docker's default bridge, a vagrant-libvirt
// management network on virbr1 (B07), an uplink and a default route, plus
// the default lab's own objects from an earlier `up`.
var fakeHost = topology.Inventory{
	Routes: []topology.NamedPrefix{
		np("eth0", "0.0.0.0/0", ""),
		np("eth0", "2001:db8::/32", ""),
		np("docker0", "172.17.0.0/16", ""),
		np("virbr1", "192.168.121.0/24", ""),
		np("eth0", "192.168.50.0/24", ""),
		np("br-hybrid", "10.0.1.0/24", ""),
		np("virbr-hybrid", "10.0.9.0/24", ""),
	},
	Addresses: []topology.NamedPrefix{
		np("lo", "127.0.0.1/8", ""),
		np("docker0", "172.17.0.1/16", ""),
		np("virbr1", "192.168.121.1/24", ""),
		np("eth0", "192.168.50.2/24", ""),
		np("br-hybrid", "10.0.1.1/24", ""),
		np("virbr-hybrid", "10.0.9.1/24", ""),
	},
	DockerNetworks: []topology.NamedPrefix{
		np("bridge", "172.17.0.0/16", "docker0"),
		np("hybrid-net", "10.0.1.0/24", "br-hybrid"),
	},
	LibvirtNetworks: []topology.NamedPrefix{
		np("vagrant-libvirt", "192.168.121.0/24", "virbr1"),
		np("hybrid-mgmt", "10.0.9.0/24", "virbr-hybrid"),
	},
}

func TestHostConflicts(t *testing.T) {
	tests := []struct {
		name, subnet, mgmt string
		want               []string
	}{
		{"own objects only", "10.0.1.0/24", "10.0.9.0/24", nil},
		{"libvirt management range (B07)", "192.168.121.0/24", "10.0.9.0/24", []string{
			"subnet 192.168.121.0/24 overlaps 192.168.121.0/24 on virbr1 (route); " +
				"pick another subnet in lab.yaml",
			"subnet 192.168.121.0/24 overlaps 192.168.121.0/24 of libvirt network " +
				`"vagrant-libvirt" on virbr1; pick another subnet in lab.yaml`,
		}},
		{"inside docker0", "172.17.5.0/24", "10.0.9.0/24", []string{
			"subnet 172.17.5.0/24 overlaps 172.17.0.0/16 on docker0 (route); " +
				"pick another subnet in lab.yaml",
			"subnet 172.17.5.0/24 overlaps 172.17.0.0/16 of docker network \"bridge\" " +
				"on docker0; pick another subnet in lab.yaml",
		}},
		{"management on the uplink", "10.0.1.0/24", "192.168.50.0/24", []string{
			"management.subnet 192.168.50.0/24 overlaps 192.168.50.0/24 on eth0 (route); " +
				"pick another management.subnet in lab.yaml",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPlan(t, "name: hybrid\nsubnet: "+tt.subnet+"\nmanagement: {subnet: "+
				tt.mgmt+"}\nvms: [{name: a}]\n")
			var got []string
			for _, c := range topology.HostConflicts(p, fakeHost) {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("conflicts:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "),
					strings.Join(tt.want, "\n  "))
			}
		})
	}
}

// TestHostConflictsOtherLab checks that another lab's bridge counts: only
// the plan's own objects are exempt.
func TestHostConflictsOtherLab(t *testing.T) {
	p := mustPlan(t, "name: other\nsubnet: 10.0.1.0/24\nmanagement: {subnet: 10.0.8.0/24}\n"+
		"vms: [{name: a}]\n")
	got := topology.HostConflicts(p, fakeHost)
	owners := map[string]bool{}
	for _, c := range got {
		owners[c.Owner] = true
	}
	for _, want := range []string{"br-hybrid", `docker network "hybrid-net" on br-hybrid`} {
		if !owners[want] {
			t.Errorf("conflict with %s missing; got %v", want, got)
		}
	}
}

func TestReadInventory(t *testing.T) {
	inv, err := topology.ReadInventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	loopback := netip.MustParsePrefix("127.0.0.1/8")
	if !slices.Contains(inv.Addresses, topology.NamedPrefix{Name: "lo", Prefix: loopback}) {
		t.Errorf("addresses %v lack lo 127.0.0.1/8", inv.Addresses)
	}
	for _, a := range inv.Addresses {
		if a.Name == "" || !a.Prefix.Addr().Is4() {
			t.Errorf("address %+v: want a link name and an IPv4 prefix", a)
		}
	}
	for _, r := range inv.Routes {
		if r.Name == "" || r.Prefix.Bits() == 0 {
			t.Errorf("route %+v: want an owner and no default route", r)
		}
	}
	t.Logf("read %d routes and %d addresses", len(inv.Routes), len(inv.Addresses))
}
