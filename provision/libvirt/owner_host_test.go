package libvirt

import (
	"fmt"
	"reflect"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// defineInert defines a domain that has no disk and no NIC and is never
// started, described by desc, and undefines it when the test ends.
func defineInert(t *testing.T, c *Conn, name, desc string) {
	t.Helper()
	x := fmt.Sprintf(`<domain type='qemu'><name>%s</name><description>%s</description>
  <memory unit='MiB'>16</memory><os><type arch='x86_64'>hvm</type></os></domain>`, name, desc)
	dom, err := c.l.DomainDefineXML(x)
	if err != nil {
		t.Fatalf("define domain %q: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.l.DomainUndefine(dom); err != nil && !isNotFound(err) {
			t.Errorf("undefine domain %q: %v", name, err)
		}
	})
}

// testPool creates a transient directory pool holding empty volumes.
func testPool(t *testing.T, c *Conn, name string, vols ...string) {
	t.Helper()
	x := fmt.Sprintf(`<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>`,
		name, t.TempDir())
	p, err := c.l.StoragePoolCreateXML(x, 0)
	if err != nil {
		t.Fatalf("create pool %q: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.l.StoragePoolDestroy(p); err != nil && !isNotFound(err) {
			t.Errorf("destroy pool %q: %v", name, err)
		}
	})
	for _, v := range vols {
		vx := fmt.Sprintf(`<volume><name>%s</name><capacity>1048576</capacity>
  <target><format type='raw'/></target></volume>`, v)
		if _, err := c.l.StorageVolCreateXML(p, vx, golibvirt.StorageVolCreateFlags(0)); err != nil {
			t.Fatalf("create volume %q: %v", v, err)
		}
	}
}

// TestLabDomainsOnHost defines inert domains of two labs, "hle" and
// "hle-2", and checks lab "hle" finds only its own and removes only its
// own volumes.
func TestLabDomainsOnHost(t *testing.T) {
	c := dialTest(t)
	defineInert(t, c, "hle-base1", Mark("hle"))
	defineInert(t, c, "hle-old1", "")
	defineInert(t, c, "hle-2-base1", Mark("hle-2"))
	defineInert(t, c, "hle-2-old1", "")

	o := Owner{Lab: "hle", Planned: []string{"hle-base1", "hle-old1"}}
	doms, err := c.LabDomains(o)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range doms {
		names = append(names, d.Name)
	}
	if want := []string{"hle-base1", "hle-old1"}; !reflect.DeepEqual(names, want) {
		t.Errorf("LabDomains(hle) = %v, want %v", names, want)
	}
	if d, ok, err := c.Domain("hle-2-base1"); err != nil || !ok || d.Lab != "hle-2" {
		t.Errorf("Domain(hle-2-base1) = %+v, %v, %v; want the mark of hle-2", d, ok, err)
	}

	const pool = "hle-pool"
	testPool(t, c, pool, "hle-base1.img", "hle-base1-vdb.qcow2", "hle-2-base1.img",
		"hle-base10.img")
	gone, err := c.RemoveDomainVolumes(pool, "hle-base1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hle-base1-vdb.qcow2", "hle-base1.img"}; !reflect.DeepEqual(gone, want) {
		t.Errorf("RemoveDomainVolumes(hle-base1) removed %v, want %v", gone, want)
	}
	left, err := c.Volumes(pool, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hle-2-base1.img", "hle-base10.img"}; !reflect.DeepEqual(left, want) {
		t.Errorf("volumes left = %v, want %v", left, want)
	}
}
