// Package topology describes a hybrid lab (lab.yaml), validates it, and
// computes the one IP plan that every other part of hybridlab applies.
//
// Nothing in this package touches the host except ReadInventory, which only
// reads the kernel's addresses and routes; HostConflicts compares them with a plan.
package topology

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Node kinds.
const (
	KindVM        = "vm"
	KindContainer = "container"
)

// VM roles.
const (
	RoleBase     = "base"
	RoleDocker   = "docker"
	RoleObserver = "observer"
)

// RoleContainer is the role every container has.
const RoleContainer = "container"

//go:embed default.yaml
var defaultLab []byte

// DefaultYAML returns the embedded default lab description.
func DefaultYAML() []byte { return append([]byte(nil), defaultLab...) }

// Lab is the user's description of a lab, as written in lab.yaml. Empty
// fields take defaults (see Defaults); Plan computes everything else.
type Lab struct {
	// Name prefixes every host object the lab creates (containers, Docker
	// network, libvirt domains, nft table). A DNS label of at most 12 bytes.
	Name string `json:"name,omitempty"`
	// Bridge is the Linux bridge shared by VMs and containers.
	Bridge string `json:"bridge,omitempty"`
	// Subnet is the lab's IPv4 subnet in CIDR form, e.g. 10.0.1.0/24.
	Subnet string `json:"subnet,omitempty"`
	// Gateway is the bridge's address; the subnet's first host by default.
	Gateway string `json:"gateway,omitempty"`
	// Domain is the DNS domain the lab's dnsmasq is authoritative for.
	Domain string `json:"domain,omitempty"`
	// MTU of the bridge and of every port on it.
	MTU int `json:"mtu,omitempty"`
	// DHCPRange is the block VMs get addresses from, "FIRST-LAST".
	DHCPRange string `json:"dhcp_range,omitempty"`
	// DockerRange is Docker's allocation range (--ip-range), in CIDR form.
	DockerRange string `json:"docker_range,omitempty"`
	// Reserved addresses are never handed to any node.
	Reserved []Reserved `json:"reserved,omitempty"`
	// Management is the libvirt network Vagrant uses to reach VMs.
	Management Management `json:"management,omitempty"`
	// Segments are further bridges with subnets of their own. The fields
	// above describe the main segment; the host routes between segments,
	// subject to the policies.
	Segments []Segment `json:"segments,omitempty"`

	VMs        []VM        `json:"vms,omitempty"`
	Containers []Container `json:"containers,omitempty"`
	// Policies filter traffic on the lab bridge; none means all is allowed.
	Policies *Policies `json:"policies,omitempty"`

	// segment is set on the per-segment labs of segmentLabs.
	segment string
}

// MainSegment names the segment the lab's top-level bridge and subnet
// describe; nodes without a segment field are on it.
const MainSegment = "main"

// Segment is one more bridge and subnet of a lab. Its nodes name it in
// their segment field. Empty fields take the same defaults as the main
// segment's, except the bridge, which is br-LAB-NAME.
type Segment struct {
	Name        string     `json:"name"`
	Bridge      string     `json:"bridge,omitempty"`
	Subnet      string     `json:"subnet"`
	Gateway     string     `json:"gateway,omitempty"`
	DHCPRange   string     `json:"dhcp_range,omitempty"`
	DockerRange string     `json:"docker_range,omitempty"`
	Reserved    []Reserved `json:"reserved,omitempty"`
}

// Reserved is an address kept out of every allocation.
type Reserved struct {
	IP   string `json:"ip"`
	Note string `json:"note,omitempty"`
}

// Management describes the isolated libvirt network vagrant-libvirt needs
// for SSH. It never forwards off the host.
type Management struct {
	Subnet string `json:"subnet,omitempty"`
	Bridge string `json:"bridge,omitempty"`
}

// VM is a Vagrant/libvirt virtual machine with one NIC on the lab bridge.
type VM struct {
	Name   string `json:"name"`
	Role   string `json:"role,omitempty"`
	Memory int    `json:"memory,omitempty"` // MiB
	CPUs   int    `json:"cpus,omitempty"`
	// IP pins the VM's reservation inside the DHCP range.
	IP string `json:"ip,omitempty"`
	// MAC overrides the MAC derived from the IP.
	MAC string `json:"mac,omitempty"`
	// Segment is the segment the VM's lab NIC is on; main by default.
	Segment string `json:"segment,omitempty"`
}

// Container is a Docker container attached to the lab bridge.
type Container struct {
	Name  string `json:"name"`
	Image string `json:"image,omitempty"`
	// IP pins the container's address inside the Docker range.
	IP      string   `json:"ip,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	Command []string `json:"command,omitempty"`
	// Publish lists ports published on the host, "HOST:CONTAINER[/tcp|udp]".
	Publish []string `json:"publish,omitempty"`
	// Segment is the segment the container is on; main by default.
	Segment string `json:"segment,omitempty"`
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid lab")

// Parse decodes a lab description. Unknown fields are an error, so a typo
// never silently falls back to a default.
func Parse(data []byte) (*Lab, error) {
	var lab Lab
	if err := yaml.UnmarshalStrict(data, &lab); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, decodeProblem(err))
	}
	return &lab, nil
}

var (
	unknownField = regexp.MustCompile(`unknown field "([^"]*)"`)
	wrongType    = regexp.MustCompile(
		`cannot unmarshal (\w+) into Go struct field (\S+) of type (\S+)`)
)

func typeWord(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"):
		return "a whole number"
	case goType == "string":
		return "a string (quote it)"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	}
	return "a mapping"
}

// decodeProblem rewords a decoder error so that it names the field and the
// fix instead of the JSON machinery underneath the YAML decoder.
func decodeProblem(err error) string {
	msg := err.Error()
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		hint := "check its spelling and indentation against topology/default.yaml"
		switch near := nearestField(m[1]); {
		case near == m[1]:
			// A real field, in the wrong place (segments take no mtu, say).
			hint = fmt.Sprintf("%q is not allowed at that place; check its indentation "+
				"against topology/default.yaml", m[1])
		case near != "":
			hint = fmt.Sprintf("did you mean %q?", near)
		}
		return fmt.Sprintf("unknown field %q; %s", m[1], hint)
	}
	if m := wrongType.FindStringSubmatch(msg); m != nil {
		_, field, _ := strings.Cut(m[2], ".")
		return fmt.Sprintf("field %q: got a %s, want %s; fix the value", field, m[1],
			typeWord(m[3]))
	}
	msg = strings.TrimPrefix(msg, "error unmarshaling JSON: while decoding JSON: ")
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	return "lab file: " + msg + "; fix the YAML"
}

// nearestField returns the lab.yaml field name closest to name (at most two
// edits away), or "".
func nearestField(name string) string {
	best, bestDist := "", 3
	for _, f := range fieldNames(reflect.TypeFor[Lab](), nil) {
		if d := editDistance(name, f); d < bestDist {
			best, bestDist = f, d
		}
	}
	return best
}

func fieldNames(t reflect.Type, out []string) []string {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag != "" && tag != "-" {
			out = append(out, tag)
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = fieldNames(ft, out)
		}
	}
	return out
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Load reads the lab description at path, or the embedded default lab when
// path is empty.
func Load(path string) (*Lab, error) {
	if path == "" {
		return Parse(defaultLab)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read lab file: %w", err)
	}
	lab, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lab, nil
}

// PlanYAML parses a lab description and computes its plan: Parse then
// NewPlan, for callers that hold the YAML text rather than a file.
func PlanYAML(data []byte) (*Plan, error) {
	lab, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return NewPlan(lab)
}
