package topology_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"hybridlab/topology"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func mustPlan(t *testing.T, yaml string) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func defaultPlan(t *testing.T) *topology.Plan {
	t.Helper()
	return mustPlan(t, string(topology.DefaultYAML()))
}

func TestDefaultPlanNodes(t *testing.T) {
	p := defaultPlan(t)
	tests := []struct {
		name, kind, role, ip, mac, dns, object string
	}{
		{"base1", "vm", "base", "10.0.1.10", "52:54:0a:00:01:0a", "base1.lab", "hybrid-base1"},
		{"docker1", "vm", "docker", "10.0.1.11", "52:54:0a:00:01:0b", "docker1.lab", "hybrid-docker1"},
		{"web", "container", "container", "10.0.1.254", "02:42:0a:00:01:fe", "web.lab", "hybrid-web"},
		{"db", "container", "container", "10.0.1.253", "02:42:0a:00:01:fd", "db.lab", "hybrid-db"},
		{"client", "container", "container", "10.0.1.252", "02:42:0a:00:01:fc", "client.lab",
			"hybrid-client"},
		{"probe", "container", "container", "10.0.1.251", "02:42:0a:00:01:fb", "probe.lab",
			"hybrid-probe"},
		{"base2", "vm", "base", "10.0.20.10", "52:54:0a:00:14:0a", "base2.lab", "hybrid-base2"},
		{"edge1", "container", "container", "10.0.20.254", "02:42:0a:00:14:fe", "edge1.lab",
			"hybrid-edge1"},
	}
	if len(p.Nodes) != len(tests) {
		t.Fatalf("plan has %d nodes, want %d", len(p.Nodes), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := p.Nodes[i]
			got := [...]string{n.Name, n.Kind, n.Role, n.IP.String(), n.MAC, n.DNS, n.Object}
			want := [...]string{tt.name, tt.kind, tt.role, tt.ip, tt.mac, tt.dns, tt.object}
			if got != want {
				t.Errorf("node %d = %v, want %v", i, got, want)
			}
		})
	}
}

func TestDefaultPlanNetwork(t *testing.T) {
	p := defaultPlan(t)
	tests := []struct{ field, got, want string }{
		{"lab", p.Lab, "hybrid"},
		{"subnet", p.Subnet.String(), "10.0.1.0/24"},
		{"gateway", p.Gateway.String(), "10.0.1.1"},
		{"bridge", p.Bridge.Name, "br-hybrid"},
		{"bridge mac", p.Bridge.MAC, "02:68:0a:00:01:01"},
		{"bridge address", p.Bridge.Address.String(), "10.0.1.1/24"},
		{"dhcp", p.DHCP.String(), "10.0.1.10-10.0.1.99"},
		{"docker network", p.Docker.Network, "hybrid-net"},
		{"docker range", p.Docker.IPRange.String(), "10.0.1.128/25"},
		{"mgmt network", p.Management.Network, "hybrid-mgmt"},
		{"mgmt bridge", p.Management.Bridge, "virbr-hybrid"},
		{"mgmt subnet", p.Management.Subnet.String(), "10.0.9.0/24"},
		{"mgmt gateway", p.Management.Gateway.String(), "10.0.9.1"},
		{"mgmt dhcp", p.Management.DHCP.String(), "10.0.9.10-10.0.9.254"},
		{"nft table", p.NFTable, "hybridlab_hybrid"},
		{"label", p.Labels[topology.LabelLab], "hybrid"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.field, tt.got, tt.want)
		}
	}
}

func TestPlanGolden(t *testing.T) {
	got, err := json.MarshalIndent(defaultPlan(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "plan-default.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./topology -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("plan differs from %s; rerun with -update if intended:\n%s", golden, got)
	}
}

func TestPlanDeterministic(t *testing.T) {
	a, _ := json.Marshal(defaultPlan(t))
	b, _ := json.Marshal(defaultPlan(t))
	if !bytes.Equal(a, b) {
		t.Fatal("the same lab gave two different plans")
	}
}

const orderLab = `
name: t
subnet: 10.0.1.0/24
vms: [{name: a}, {name: b}, {name: c}]
containers:
  - {name: p}
  - {name: q}
  - {name: r}
`

const swappedLab = `
name: t
subnet: 10.0.1.0/24
vms: [{name: c}, {name: b}, {name: a}]
containers:
  - {name: p}
  - {name: r}
  - {name: q}
`

// TestPlanReorder pins the documented rule: automatic placement follows list
// order, so reordering nodes exchanges the addresses of exactly the nodes
// that moved, and appending a node changes no existing address.
func TestPlanReorder(t *testing.T) {
	base := ips(mustPlan(t, orderLab))
	swapped := ips(mustPlan(t, swappedLab))
	want := map[string]string{
		"a": base["c"], "b": base["b"], "c": base["a"],
		"p": base["p"], "q": base["r"], "r": base["q"],
	}
	for name, ip := range want {
		if swapped[name] != ip {
			t.Errorf("after reorder %s has %s, want %s", name, swapped[name], ip)
		}
	}
	grown := ips(mustPlan(t, orderLab+"  - {name: w}\n"))
	for name, ip := range base {
		if grown[name] != ip {
			t.Errorf("appending a container moved %s from %s to %s", name, ip, grown[name])
		}
	}
}

func ips(p *topology.Plan) map[string]string {
	out := map[string]string{}
	for _, n := range p.Nodes {
		out[n.Name] = n.IP.String()
	}
	return out
}

func TestPlanPinned(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       map[string]string
	}{
		{"pinned honoured", `
name: t
subnet: 10.0.1.0/24
vms: [{name: a, ip: 10.0.1.50}]
containers: [{name: x, ip: 10.0.1.130}]
`, map[string]string{"a": "10.0.1.50", "x": "10.0.1.130"}},
		{"later pin not handed to earlier node", `
name: t
subnet: 10.0.1.0/24
vms: [{name: a}, {name: b, ip: 10.0.1.10}]
containers: [{name: x}, {name: w, ip: 10.0.1.254}]
`, map[string]string{"a": "10.0.1.11", "b": "10.0.1.10", "x": "10.0.1.253", "w": "10.0.1.254"}},
		{"reserved skipped", `
name: t
subnet: 10.0.1.0/24
reserved: [{ip: 10.0.1.10}, {ip: 10.0.1.254, note: printer}]
vms: [{name: a}]
containers: [{name: x}]
`, map[string]string{"a": "10.0.1.11", "x": "10.0.1.253"}},
		{"docker range top is a host address", `
name: t
subnet: 10.0.1.0/24
dhcp_range: 10.0.1.10-10.0.1.63
docker_range: 10.0.1.64/26
containers: [{name: x}]
`, map[string]string{"x": "10.0.1.127"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ips(mustPlan(t, tt.yaml))
			for name, ip := range tt.want {
				if got[name] != ip {
					t.Errorf("%s has %s, want %s", name, got[name], ip)
				}
			}
		})
	}
}

func TestPlanAuxAddresses(t *testing.T) {
	p := mustPlan(t, `
name: t
subnet: 10.0.1.0/24
reserved: [{ip: 10.0.1.200, note: printer}]
vms: [{name: a}]
containers: [{name: x}]
`)
	// The whole VM block (10-99) plus the reservation: adding a VM later
	// leaves the Docker network as it is.
	if got, want := len(p.Docker.AuxAddresses), p.DHCP.Size()+1; got != want {
		t.Fatalf("%d aux addresses, want %d (VM block + reserved)", got, want)
	}
	held := map[netip.Addr]bool{}
	for _, ip := range p.Docker.AuxAddresses {
		held[ip] = true
	}
	for _, ip := range []string{"10.0.1.10", "10.0.1.99", "10.0.1.200"} {
		if !held[netip.MustParseAddr(ip)] {
			t.Errorf("aux addresses miss %s", ip)
		}
	}
	if held[p.Containers()[0].IP] {
		t.Errorf("aux addresses hold container x's %s", p.Containers()[0].IP)
	}
	bigger := mustPlan(t, `
name: t
subnet: 10.4.0.0/16
dhcp_range: 10.4.0.10-10.4.127.254
docker_range: 10.4.128.0/17
vms: [{name: a}, {name: b}]
`)
	if len(bigger.Docker.AuxAddresses) != 2 {
		t.Errorf("a VM block over %d addresses: aux %v, want one per VM", topology.MaxAuxBlock,
			bigger.Docker.AuxAddresses)
	}
}

func TestDefaultsForSubnets(t *testing.T) {
	tests := []struct {
		subnet, gateway, dhcp, docker, firstVM, firstCtr string
	}{
		{"10.20.0.0/16", "10.20.0.1", "10.20.0.10-10.20.0.99", "10.20.128.0/17",
			"10.20.0.10", "10.20.255.254"},
		{"10.0.1.0/24", "10.0.1.1", "10.0.1.10-10.0.1.99", "10.0.1.128/25",
			"10.0.1.10", "10.0.1.254"},
		{"10.0.1.32/27", "10.0.1.33", "10.0.1.36-10.0.1.47", "10.0.1.48/28",
			"10.0.1.36", "10.0.1.62"},
		{"10.0.1.8/29", "10.0.1.9", "10.0.1.10-10.0.1.11", "10.0.1.12/30",
			"10.0.1.10", "10.0.1.14"},
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			p := mustPlan(t, "name: t\nsubnet: "+tt.subnet+
				"\nvms: [{name: a}]\ncontainers: [{name: x}]\n")
			got := [...]string{p.Gateway.String(), p.DHCP.String(), p.Docker.IPRange.String(),
				p.Nodes[0].IP.String(), p.Nodes[1].IP.String()}
			want := [...]string{tt.gateway, tt.dhcp, tt.docker, tt.firstVM, tt.firstCtr}
			if got != want {
				t.Errorf("gateway, dhcp, docker, vm, container = %v, want %v", got, want)
			}
		})
	}
}

func TestDefaultNamesFitInterfaceLimit(t *testing.T) {
	for _, name := range []string{"a", "hybrid", "abcdefghi", "abcdefghij", "abcdefghijkl"} {
		p := mustPlan(t, "name: "+name+"\nsubnet: 10.0.1.0/24\nvms: [{name: a}]\n")
		for _, ifc := range p.Interfaces {
			if len(ifc.Name) > topology.MaxIfName {
				t.Errorf("lab %q: interface %q has %d bytes", name, ifc.Name, len(ifc.Name))
			}
		}
	}
}

func TestProblemsSplitsLines(t *testing.T) {
	_, err := topology.NewPlan(&topology.Lab{Name: "t", MTU: 1})
	got := topology.Problems(err)
	if len(got) < 3 {
		t.Fatalf("want several problems (subnet, nodes, mtu), got %q", got)
	}
	for _, p := range got {
		if p == "" || bytes.ContainsRune([]byte(p), '\n') {
			t.Errorf("problem %q is not one line", p)
		}
	}
}

// A gateway in the upper half of the subnet keeps Docker's default range off it: the range
// becomes the quarter of the subnet without the gateway.
func TestDefaultDockerRangeAvoidsTheGateway(t *testing.T) {
	tests := []struct{ gateway, want string }{
		{"10.0.1.1", "10.0.1.128/25"},
		{"10.0.1.254", "10.0.1.128/26"},
		{"10.0.1.130", "10.0.1.192/26"},
	}
	for _, tt := range tests {
		p, err := topology.PlanYAML([]byte("name: gwt\nsubnet: 10.0.1.0/24\ngateway: " +
			tt.gateway + "\ncontainers: [{name: a}]\n"))
		if err != nil {
			t.Fatalf("gateway %s: %v", tt.gateway, err)
		}
		if got := p.Docker.IPRange.String(); got != tt.want {
			t.Errorf("gateway %s: docker range %s, want %s", tt.gateway, got, tt.want)
		}
	}
}
