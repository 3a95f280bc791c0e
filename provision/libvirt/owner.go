package libvirt

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// markPrefix starts the description of every domain a lab creates; the
// lab's name follows it.
const markPrefix = "hybridlab:"

// sourcePrefix starts the description vagrant-libvirt gives a domain whose
// Vagrantfile sets none: "Source: /path/to/Vagrantfile".
const sourcePrefix = "Source: "

// Mark is the domain description that marks a domain as lab's, as the
// rendered Vagrantfile sets it (`virsh desc DOMAIN` shows it).
func Mark(lab string) string { return markPrefix + lab }

// MarkedLab returns the lab named by a domain description's mark, and
// false when the description carries none.
func MarkedLab(description string) (string, bool) {
	fields := strings.Fields(description)
	if len(fields) == 0 {
		return "", false
	}
	lab, ok := strings.CutPrefix(fields[0], markPrefix)
	if !ok || lab == "" {
		return "", false
	}
	return lab, true
}

// Owner tells one lab's domains from every other domain on the host. Names
// alone cannot: lab names may contain '-', so "lab-2-base1" may be a VM of
// lab "lab-2" as well as of lab "lab".
type Owner struct {
	Lab string
	// Planned are the domain names of the lab's planned VMs.
	Planned []string
	// SourceDir holds the lab's VM directories; vagrant-libvirt describes
	// an unmarked domain by the Vagrantfile it came from. Empty: unused.
	SourceDir string
}

// Owns reports whether d is the lab's. A marked domain is the lab's when
// the mark names it. An unmarked one (made before the mark existed) is the
// lab's when vagrant-libvirt's description names a Vagrantfile under
// SourceDir, or, with no such description, when its name is planned.
func (o Owner) Owns(d Domain) bool {
	if lab, ok := MarkedLab(d.Description); ok {
		return lab == o.Lab
	}
	if src, ok := strings.CutPrefix(d.Description, sourcePrefix); ok && o.SourceDir != "" {
		dir := filepath.Clean(o.SourceDir) + string(filepath.Separator)
		return strings.HasPrefix(filepath.Clean(strings.TrimSpace(src)), dir)
	}
	return slices.Contains(o.Planned, d.Name)
}

// LabDomains lists the domains o owns, sorted by name, like `virsh list
// --all` + `virsh desc` + `virsh domiflist`.
func (c *Conn) LabDomains(o Owner) ([]Domain, error) {
	all, err := c.Domains("")
	if err != nil {
		return nil, err
	}
	var out []Domain
	for _, d := range all {
		if o.Owns(d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// extraDisk matches the names vagrant-libvirt gives a domain's additional
// disks: DOMAIN-vdX.qcow2 (or .raw). A ".img" suffix is left out: that is
// the main volume of a domain named DOMAIN-vdX.
var extraDisk = regexp.MustCompile(`^-vd[a-z]+\.(qcow2|raw)$`)

// IsVolumeOf reports whether vagrant-libvirt names volume vol for domain:
// DOMAIN.img for the box's disk, DOMAIN-vdX.qcow2 for an added disk. No
// other domain's volume matches, whatever its name.
func IsVolumeOf(domain, vol string) bool {
	rest, ok := strings.CutPrefix(vol, domain)
	return ok && (rest == ".img" || extraDisk.MatchString(rest))
}

// DomainVolumes lists the volumes in pool that vagrant-libvirt made for
// domain (see IsVolumeOf), sorted, like `virsh vol-list POOL`.
func (c *Conn) DomainVolumes(pool, domain string) ([]string, error) {
	all, err := c.Volumes(pool, domain)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range all {
		if IsVolumeOf(domain, v) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out, nil
}

// RemoveDomainVolumes deletes the volumes in pool that vagrant-libvirt
// made for domain and returns their names. Call it only for a domain the
// lab owns, or one that is gone.
func (c *Conn) RemoveDomainVolumes(pool, domain string) ([]string, error) {
	names, err := c.DomainVolumes(pool, domain)
	if err != nil {
		return nil, fmt.Errorf("volumes of domain %q: %w", domain, err)
	}
	return c.RemoveVolumes(pool, names...)
}
