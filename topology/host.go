package topology

import (
	"fmt"
	"net/netip"
)

// Inventory is the set of IPv4 prefixes already in use on the host, each
// with the object that holds it. ReadInventory fills Routes and Addresses
// from the kernel; the caller adds Docker and libvirt networks, so this
// package needs neither client.
type Inventory struct {
	// Routes of the main table; Name is the route's link (or its type,
	// e.g. "blackhole", when it has none).
	Routes []NamedPrefix
	// Addresses on links; Name is the link, Prefix the address with its
	// prefix length (10.0.1.1/24).
	Addresses []NamedPrefix
	// DockerNetworks: Name is the Docker network, Bridge its Linux bridge.
	DockerNetworks []NamedPrefix
	// LibvirtNetworks: Name is the libvirt network, Bridge its bridge.
	LibvirtNetworks []NamedPrefix
}

// NamedPrefix is a prefix and the object that holds it.
type NamedPrefix struct {
	Name   string       `json:"name"`
	Prefix netip.Prefix `json:"prefix"`
	// Bridge is the Linux bridge of a Docker or libvirt network, if known.
	Bridge string `json:"bridge,omitempty"`
}

// Conflict is one of the lab's prefixes overlapping a prefix held by
// something the lab does not own.
type Conflict struct {
	// Field is the lab.yaml field: "subnet" or "management.subnet".
	Field string       `json:"field"`
	Lab   netip.Prefix `json:"lab"`
	Other netip.Prefix `json:"other"`
	// Owner names the holder: `docker0`, `docker network "bridge" on
	// docker0`, `libvirt network "default" on virbr0`.
	Owner string `json:"owner"`
	// Source is where it was seen: route, address, docker, libvirt.
	Source string `json:"source"`
}

func (c Conflict) String() string {
	if c.Source == "route" || c.Source == "address" {
		return fmt.Sprintf("%s %s overlaps %s on %s (%s); pick another %s in lab.yaml",
			c.Field, c.Lab, c.Other, c.Owner, c.Source, c.Field)
	}
	return fmt.Sprintf("%s %s overlaps %s of %s; pick another %s in lab.yaml",
		c.Field, c.Lab, c.Other, c.Owner, c.Field)
}

// HostConflicts lists every prefix in inv that overlaps the plan's subnet
// or management subnet, except those held by the lab's own objects (its
// bridge, Docker network, libvirt network and management bridge), so a
// second `up` of the same lab finds none. Default routes are ignored. The
// result is in inventory order and names each holder once per lab prefix.
// It reads nothing itself; see ReadInventory.
func HostConflicts(p *Plan, inv Inventory) []Conflict {
	own := map[string]bool{
		"link/" + p.Management.Bridge:     true,
		"libvirt/" + p.Management.Network: true,
	}
	for _, s := range p.AllSegments() {
		own["link/"+s.Bridge.Name] = true
		own["docker/"+s.Docker.Network] = true
	}
	sources := []struct {
		name, kind string
		list       []NamedPrefix
	}{
		{"route", "link", inv.Routes},
		{"address", "link", inv.Addresses},
		{"docker", "docker", inv.DockerNetworks},
		{"libvirt", "libvirt", inv.LibvirtNetworks},
	}
	labs := []struct {
		field  string
		prefix netip.Prefix
	}{{"subnet", p.Subnet}}
	for _, s := range p.AllSegments()[1:] {
		labs = append(labs, struct {
			field  string
			prefix netip.Prefix
		}{fmt.Sprintf("segment %s subnet", s.Name), s.Subnet})
	}
	labs = append(labs, struct {
		field  string
		prefix netip.Prefix
	}{"management.subnet", p.Management.Subnet})
	var out []Conflict
	seen := map[string]bool{}
	for _, lab := range labs {
		for _, src := range sources {
			for _, np := range src.list {
				if !clashes(lab.prefix, np.Prefix) || own[src.kind+"/"+np.Name] {
					continue
				}
				c := Conflict{Field: lab.field, Lab: lab.prefix, Other: np.Prefix.Masked(),
					Owner: ownerName(src.kind, np), Source: src.name}
				key := c.Field + "|" + c.Owner
				if !seen[key] {
					seen[key] = true
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func clashes(lab, other netip.Prefix) bool {
	return other.IsValid() && other.Addr().Is4() && other.Bits() > 0 && lab.Overlaps(other)
}

func ownerName(kind string, np NamedPrefix) string {
	if kind == "link" {
		return np.Name
	}
	name := fmt.Sprintf("%s network %q", kind, np.Name)
	if np.Bridge != "" {
		name += " on " + np.Bridge
	}
	return name
}
