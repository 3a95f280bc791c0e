package vagrant

import (
	"strings"
	"testing"

	"hybridlab/provision/accel"
	"hybridlab/provision/libvirt"
)

// TestOwnerSelectsOwnDomains checks that lab "hlv" takes the domains its
// Vagrantfiles make and none of lab "hlv-2", whose names start with "hlv-".
func TestOwnerSelectsOwnDomains(t *testing.T) {
	l := New(testConfig(t, accel.TCG, true), nil)
	o := l.Owner()
	mine := []libvirt.Domain{
		{Name: "hlv-base1", Description: libvirt.Mark("hlv")},
		{Name: "hlv-docker1"},
		{Name: "hlv-gone1",
			Description: "Source: /var/lib/hybridlab/hlv/vagrant/gone1/Vagrantfile"},
	}
	theirs := []libvirt.Domain{
		{Name: "hlv-2-base1", Description: libvirt.Mark("hlv-2")},
		{Name: "hlv-2-base1"},
		{Name: "hlv-2-base1",
			Description: "Source: /var/lib/hybridlab/hlv-2/vagrant/base1/Vagrantfile"},
		{Name: "hlv-base1", Description: libvirt.Mark("hlv-2")},
	}
	for _, d := range mine {
		if !o.Owns(d) {
			t.Errorf("lab hlv does not own its domain %+v", d)
		}
	}
	for _, d := range theirs {
		if o.Owns(d) {
			t.Errorf("lab hlv owns %+v of another lab", d)
		}
	}
}

// TestRenderMarksDomain checks the rendered Vagrantfile describes the
// domain with the lab's mark, which Owner reads back.
func TestRenderMarksDomain(t *testing.T) {
	c := testConfig(t, accel.TCG, true)
	b, err := Render(c, c.Plan.VMs()[0])
	if err != nil {
		t.Fatal(err)
	}
	want := `lv.description = "` + libvirt.Mark("hlv") + `"`
	if !strings.Contains(string(b), want) {
		t.Errorf("Vagrantfile lacks %s", want)
	}
}
