package vagrant

import (
	"path/filepath"

	"hybridlab/provision/libvirt"
)

// Owner tells the lab's domains from every other domain on the host: the
// mark its Vagrantfiles set, and for domains made before the mark existed
// the lab's VM directories and planned domain names. See libvirt.Owner.
func (l *Lab) Owner() libvirt.Owner {
	o := libvirt.Owner{Lab: l.cfg.Plan.Lab, SourceDir: filepath.Join(l.cfg.StateDir, "vagrant")}
	for _, n := range l.cfg.Plan.VMs() {
		o.Planned = append(o.Planned, n.Object)
	}
	return o
}

// Domains lists the lab's domains, planned or not, sorted by name, like
// `virsh list --all` filtered by `virsh desc`.
func (l *Lab) Domains() ([]libvirt.Domain, error) {
	return l.virt.LabDomains(l.Owner())
}
