package containers

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"

	"hybridlab/topology"
)

func TestOverlappingNamesTheOtherNetwork(t *testing.T) {
	all := []network.Summary{
		{Name: "bridge", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "172.17.0.0/16"}}}},
		{Name: "hlc-net", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.0.5.0/24"}}}},
		{Name: "other", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.0.0.0/16"}}}},
	}
	tests := []struct {
		subnet, want string
	}{
		{"10.0.5.0/24", "other"},
		{"172.17.3.0/24", "bridge"},
		{"192.168.7.0/24", ""},
	}
	for _, tt := range tests {
		name, _, ok := overlapping(all, netip.MustParsePrefix(tt.subnet), "hlc-net")
		if name != tt.want || ok != (tt.want != "") {
			t.Errorf("overlapping(%s) = %q, %v; want %q", tt.subnet, name, ok, tt.want)
		}
	}
}

func TestNetworkDiffNamesEachSetting(t *testing.T) {
	p := planForUnit(t)
	want := networkOptions(p, false)
	cur := network.Inspect{
		Driver:  "bridge",
		Options: map[string]string{optBridgeName: "br-other", optMTU: "1500"},
		Labels:  map[string]string{"io.hybridlab.lab": "hlc"},
		IPAM: network.IPAM{Config: []network.IPAMConfig{{
			Subnet: "10.0.5.0/24", Gateway: "10.0.5.1", IPRange: "10.0.5.128/25",
			AuxAddress: auxOf(p),
		}}},
	}
	diff := networkDiff(want, cur)
	if len(diff) != 1 || !strings.Contains(diff[0], "br-other") {
		t.Fatalf("networkDiff = %q; want one line naming br-other", diff)
	}
	cur.Options[optBridgeName] = "br-hlc"
	if diff := networkDiff(want, cur); len(diff) != 0 {
		t.Fatalf("networkDiff of matching network = %q; want none", diff)
	}
}

func TestContainerSpecPutsMACWhereTheAPIWantsIt(t *testing.T) {
	p := planForUnit(t)
	n := p.Containers()[0]
	img := imageInfo{id: "sha256:1", command: idleCommand}
	old := containerSpec(p, n, img, "1.41")
	if old.config.MacAddress != n.MAC || old.net.EndpointsConfig["hlc-net"].MacAddress != "" {
		t.Errorf("API 1.41: mac in config %q, endpoint %q; want config %s", old.config.MacAddress,
			old.net.EndpointsConfig["hlc-net"].MacAddress, n.MAC)
	}
	cur := containerSpec(p, n, img, "1.47")
	if cur.config.MacAddress != "" || cur.net.EndpointsConfig["hlc-net"].MacAddress != n.MAC {
		t.Errorf("API 1.47: mac in config %q, endpoint %q; want endpoint %s", cur.config.MacAddress,
			cur.net.EndpointsConfig["hlc-net"].MacAddress, n.MAC)
	}
	if strings.Join(old.config.Cmd, " ") != "sleep 2147483647" || old.host.DNS[0] != "10.0.5.1" ||
		old.host.DNSSearch[0] != "lab" || old.config.Hostname != n.Name {
		t.Errorf("spec: cmd %v dns %v search %v hostname %s", old.config.Cmd, old.host.DNS,
			old.host.DNSSearch, old.config.Hostname)
	}
	if len(old.host.PortBindings) != 0 {
		t.Errorf("ports published without Publish: %v", old.host.PortBindings)
	}
	n.Publish = []string{"18080:8080/tcp"}
	pub := containerSpec(p, n, img, "1.41")
	b := pub.host.PortBindings["8080/tcp"]
	if len(b) != 1 || b[0].HostPort != "18080" || b[0].HostIP != "10.0.5.1" || pub.hash == old.hash {
		t.Errorf("publish 18080:8080/tcp: bindings %v, hash changed %v", pub.host.PortBindings,
			pub.hash != old.hash)
	}
	if _, ok := pub.config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("publish 18080:8080/tcp: exposed %v", pub.config.ExposedPorts)
	}
	if containerSpec(p, n, img, "1.41").hash != pub.hash {
		t.Error("spec hash is not stable")
	}
}

func TestImageLayerIsReproducible(t *testing.T) {
	a, err := imageLayer(ImageSpec{Busybox: DefaultBusybox})
	if err != nil {
		t.Skipf("no busybox: %v", err)
	}
	b, _ := imageLayer(ImageSpec{Busybox: DefaultBusybox})
	if contentHash(a, nil) != contentHash(b, nil) {
		t.Fatal("two layers from the same inputs differ")
	}
}

func planForUnit(t *testing.T) *topology.Plan {
	return testPlan(t, testLab)
}

func TestCheckStaticRefusesDynamicBinaries(t *testing.T) {
	script := filepath.Join(t.TempDir(), "probe")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	tests := []struct {
		path   string
		wantOK bool
	}{
		{DefaultBusybox, true},
		{"/bin/ls", false},
		{script, true},
	}
	for _, tt := range tests {
		if _, err := os.Stat(tt.path); err != nil {
			t.Skipf("%s: %v", tt.path, err)
		}
		if err := checkStatic(tt.path); (err == nil) != tt.wantOK {
			t.Errorf("checkStatic(%s) = %v, want ok=%v", tt.path, err, tt.wantOK)
		}
	}
}

// auxOf is the plan's aux-addresses as Docker reports them.
func auxOf(p *topology.Plan) map[string]string {
	out := map[string]string{}
	for name, ip := range p.Docker.AuxAddresses {
		out[name] = ip.String()
	}
	return out
}
