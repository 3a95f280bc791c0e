package libvirt

import (
	"bytes"
	"encoding/xml"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"hybridlab/topology"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n%s", name, got)
	}
}

func testPlan(t *testing.T) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(`
name: hlv
bridge: br-hlv
subnet: 10.0.2.0/24
management:
  subnet: 10.0.8.0/24
  bridge: virbr-hlv
vms:
  - name: base1
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNetworkXML(t *testing.T) {
	golden(t, "hlv-mgmt.xml", []byte(NetworkXML(testPlan(t).Management)))
}

func TestNetmask(t *testing.T) {
	for bits, want := range map[int]string{24: "255.255.255.0", 20: "255.255.240.0", 0: "0.0.0.0"} {
		if got := netipMask(bits); got != want {
			t.Errorf("netipMask(%d) = %s, want %s", bits, got, want)
		}
		if got := maskBits(netip.MustParseAddr(want)); got != bits {
			t.Errorf("maskBits(%s) = %d, want %d", want, got, bits)
		}
	}
}

func TestParseDomain(t *testing.T) {
	x, err := os.ReadFile("testdata/domain-live.xml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDomain(string(x))
	if err != nil {
		t.Fatal(err)
	}
	want := Domain{Name: "hlv-base1", Type: "qemu",
		Emulator:    "/var/lib/hybridlab/cache/qemu-tcg-tb128",
		Description: "hybridlab:hlv", Lab: "hlv",
		Interfaces: []Interface{
			{MAC: "52:54:00:3a:11:02", Type: "network", Network: "hlv-mgmt", Bridge: "virbr-hlv",
				Tap: "vnet4"},
			{MAC: "52:54:0a:00:02:0a", Type: "bridge", Bridge: "br-hlv", Tap: "vnet5"},
		}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("parseDomain =\n%+v\nwant\n%+v", d, want)
	}
}

func TestNetworkDocPrefixes(t *testing.T) {
	var d networkDoc
	err := xml.Unmarshal([]byte(`<network><name>n</name>
  <ip address='10.0.8.1' netmask='255.255.255.0'/>
  <ip address='10.0.9.1' prefix='25'/>
  <ip family='ipv6' address='fd00::1' prefix='64'/></network>`), &d)
	if err != nil {
		t.Fatal(err)
	}
	got := d.prefixes()
	want := []netip.Prefix{netip.MustParsePrefix("10.0.8.1/24"), netip.MustParsePrefix("10.0.9.1/25")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("prefixes = %v, want %v", got, want)
	}
}
