package libvirt

import "testing"

func TestMarkedLab(t *testing.T) {
	for _, c := range []struct {
		desc, lab string
		ok        bool
	}{
		{Mark("lab"), "lab", true},
		{Mark("lab-2"), "lab-2", true},
		{"  hybridlab:lab-2\nedited by hand", "lab-2", true},
		{"hybridlab:", "", false},
		{"Source: /var/lib/hybridlab/lab/vagrant/base1/Vagrantfile", "", false},
		{"", "", false},
	} {
		lab, ok := MarkedLab(c.desc)
		if lab != c.lab || ok != c.ok {
			t.Errorf("MarkedLab(%q) = %q, %v; want %q, %v", c.desc, lab, ok, c.lab, c.ok)
		}
	}
}

// TestOwnerOwns checks that lab "lab" tells its domains from those of lab
// "lab-2", whose names also start with "lab-".
func TestOwnerOwns(t *testing.T) {
	o := Owner{Lab: "lab", Planned: []string{"lab-base1", "lab-docker1"},
		SourceDir: "/var/lib/hybridlab/lab/vagrant"}
	src := func(lab, vm string) string {
		return "Source: /var/lib/hybridlab/" + lab + "/vagrant/" + vm + "/Vagrantfile"
	}
	for _, c := range []struct {
		what string
		d    Domain
		want bool
	}{
		{"own, marked", Domain{Name: "lab-base1", Description: Mark("lab")}, true},
		{"own, marked, dropped from the plan",
			Domain{Name: "lab-extra1", Description: Mark("lab")}, true},
		{"own, unmarked, planned", Domain{Name: "lab-docker1"}, true},
		{"own, vagrant-libvirt's description, planned",
			Domain{Name: "lab-base1", Description: src("lab", "base1")}, true},
		{"own, vagrant-libvirt's description, dropped from the plan",
			Domain{Name: "lab-extra1", Description: src("lab", "extra1")}, true},
		{"other lab's, marked", Domain{Name: "lab-2-base1", Description: Mark("lab-2")}, false},
		{"other lab's, unmarked, not planned", Domain{Name: "lab-2-base1"}, false},
		{"other lab's, vagrant-libvirt's description",
			Domain{Name: "lab-2-base1", Description: src("lab-2", "base1")}, false},
		{"other lab's mark on a planned name",
			Domain{Name: "lab-base1", Description: Mark("lab-2")}, false},
		{"other Vagrantfile on a planned name",
			Domain{Name: "lab-base1", Description: "Source: /home/u/vm/Vagrantfile"}, false},
		{"mark of a lab whose name extends ours",
			Domain{Name: "lab-base1", Description: Mark("lab-")}, false},
	} {
		if got := o.Owns(c.d); got != c.want {
			t.Errorf("%s: Owns(%+v) = %v, want %v", c.what, c.d, got, c.want)
		}
	}
}

func TestOwnerWithoutSourceDir(t *testing.T) {
	o := Owner{Lab: "lab", Planned: []string{"lab-base1"}}
	d := Domain{Name: "lab-base1",
		Description: "Source: /var/lib/hybridlab/lab/vagrant/base1/Vagrantfile"}
	if !o.Owns(d) {
		t.Errorf("Owns(%+v) = false; a planned name decides without SourceDir", d)
	}
	d.Name = "lab-2-base1"
	if o.Owns(d) {
		t.Errorf("Owns(%+v) = true for a name not planned", d)
	}
}

func TestIsVolumeOf(t *testing.T) {
	for _, c := range []struct {
		domain, vol string
		want        bool
	}{
		{"lab-base1", "lab-base1.img", true},
		{"lab-base1", "lab-base1-vdb.qcow2", true},
		{"lab-base1", "lab-base1-vdc.raw", true},
		{"lab", "lab-2-base1.img", false},
		{"lab-2", "lab-2-base1.img", false},
		{"lab-base1", "lab-base10.img", false},
		{"lab-base1", "lab-base1-vdb.img", false},
		{"lab-base1", "lab-base1-vdb-vdb.qcow2", false},
		{"lab-base1", "lab-base1.img.bak", false},
		{"lab-base1", "hybridlab-VAGRANTSLASH-debian12_vagrant_box_image_1.0.1_box.img", false},
	} {
		if got := IsVolumeOf(c.domain, c.vol); got != c.want {
			t.Errorf("IsVolumeOf(%q, %q) = %v, want %v", c.domain, c.vol, got, c.want)
		}
	}
}
