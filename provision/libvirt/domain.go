package libvirt

import (
	"encoding/xml"
	"fmt"
	"sort"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// Domain is what status and the suites need to know about a lab VM.
type Domain struct {
	Name string `json:"name"`
	// State is libvirt's state name: running, paused, shutoff, …
	State      string      `json:"state"`
	Interfaces []Interface `json:"interfaces"`
	// Emulator is the QEMU binary (or wrapper) the domain runs.
	Emulator string `json:"emulator"`
	// Type is the domain type: "qemu" (TCG) or "kvm".
	Type string `json:"type"`
	// Description is the domain's description (`virsh desc`); a lab's
	// domains carry the lab's Mark there.
	Description string `json:"description,omitempty"`
	// Lab is the lab the description's mark names, if any.
	Lab string `json:"lab,omitempty"`
}

// Interface is one NIC of a domain, as `virsh domiflist` shows it.
type Interface struct {
	MAC string `json:"mac"`
	// Type is "bridge" or "network".
	Type string `json:"type"`
	// Network is the libvirt network, for type "network".
	Network string `json:"network,omitempty"`
	// Bridge is the Linux bridge the tap is a port of.
	Bridge string `json:"bridge"`
	// Tap is the host-side device (target dev), e.g. vnet3; empty while
	// the domain is not running.
	Tap string `json:"tap,omitempty"`
}

type domainDoc struct {
	Type        string `xml:"type,attr"`
	Name        string `xml:"name"`
	Description string `xml:"description"`
	Devices     struct {
		Emulator   string `xml:"emulator"`
		Interfaces []struct {
			Type string `xml:"type,attr"`
			MAC  struct {
				Address string `xml:"address,attr"`
			} `xml:"mac"`
			Source struct {
				Bridge  string `xml:"bridge,attr"`
				Network string `xml:"network,attr"`
			} `xml:"source"`
			Target struct {
				Dev string `xml:"dev,attr"`
			} `xml:"target"`
		} `xml:"interface"`
	} `xml:"devices"`
}

// parseDomain reads a domain's XML (live XML names the taps).
func parseDomain(x string) (Domain, error) {
	var doc domainDoc
	if err := xml.Unmarshal([]byte(x), &doc); err != nil {
		return Domain{}, err
	}
	d := Domain{Name: doc.Name, Type: doc.Type, Emulator: doc.Devices.Emulator,
		Description: doc.Description}
	d.Lab, _ = MarkedLab(doc.Description)
	for _, i := range doc.Devices.Interfaces {
		d.Interfaces = append(d.Interfaces, Interface{
			MAC: strings.ToLower(i.MAC.Address), Type: i.Type, Network: i.Source.Network,
			Bridge: i.Source.Bridge, Tap: i.Target.Dev,
		})
	}
	return d, nil
}

var stateNames = map[golibvirt.DomainState]string{
	golibvirt.DomainNostate: "nostate", golibvirt.DomainRunning: "running",
	golibvirt.DomainBlocked: "blocked", golibvirt.DomainPaused: "paused",
	golibvirt.DomainShutdown: "shutdown", golibvirt.DomainShutoff: "shutoff",
	golibvirt.DomainCrashed: "crashed", golibvirt.DomainPmsuspended: "pmsuspended",
}

// Domains lists the domains whose names start with prefix, sorted by name,
// like `virsh list --all` + `virsh domiflist`. A name prefix does not tell
// whose a domain is (lab names may contain '-'); select a lab's domains
// with LabDomains.
func (c *Conn) Domains(prefix string) ([]Domain, error) {
	doms, _, err := c.l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list libvirt domains: %w", err)
	}
	var out []Domain
	for _, dom := range doms {
		if !strings.HasPrefix(dom.Name, prefix) {
			continue
		}
		d, err := c.inspect(dom)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Domain returns one domain by name; ok is false when there is none.
func (c *Conn) Domain(name string) (d Domain, ok bool, err error) {
	dom, err := c.l.DomainLookupByName(name)
	if isNotFound(err) {
		return Domain{}, false, nil
	}
	if err != nil {
		return Domain{}, false, fmt.Errorf("look up domain %q: %w", name, err)
	}
	d, err = c.inspect(dom)
	if isNotFound(err) {
		return Domain{}, false, nil
	}
	return d, err == nil, err
}

func (c *Conn) inspect(dom golibvirt.Domain) (Domain, error) {
	x, err := c.l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return Domain{}, fmt.Errorf("read domain %q: %w", dom.Name, err)
	}
	d, err := parseDomain(x)
	if err != nil {
		return Domain{}, fmt.Errorf("parse domain %q: %w", dom.Name, err)
	}
	state, _, err := c.l.DomainGetState(dom, 0)
	if err != nil {
		return Domain{}, fmt.Errorf("read state of domain %q: %w", dom.Name, err)
	}
	d.State = stateNames[golibvirt.DomainState(state)]
	return d, nil
}

// RemoveDomain stops and undefines a domain, like `virsh destroy` +
// `virsh undefine --managed-save --nvram`. Its volumes stay; see
// RemoveVolumes. An absent domain is not an error.
func (c *Conn) RemoveDomain(name string) error {
	dom, err := c.l.DomainLookupByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up domain %q: %w", name, err)
	}
	if state, _, err := c.l.DomainGetState(dom, 0); err == nil &&
		golibvirt.DomainState(state) != golibvirt.DomainShutoff {
		if err := c.l.DomainDestroy(dom); err != nil && !isNotFound(err) {
			return fmt.Errorf("stop domain %q: %w", name, err)
		}
	}
	flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineNvram
	if err := c.l.DomainUndefineFlags(dom, flags); err != nil && !isNotFound(err) {
		return fmt.Errorf("undefine domain %q: %w", name, err)
	}
	return nil
}
