package libvirt

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseVolume(t *testing.T) {
	tests := []struct {
		name, xml string
		want      Volume
	}{{
		name: "overlay with absolute backing path",
		xml: `<volume type='file'><name>lab-base1.img</name>
  <capacity unit='bytes'>8589934592</capacity><allocation unit='bytes'>5316608</allocation>
  <target><path>/img/lab-base1.img</path><format type='qcow2'/></target>
  <backingStore><path>/img/box_1.0.1_box.img</path><format type='qcow2'/></backingStore>
</volume>`,
		want: Volume{Name: "lab-base1.img", Path: "/img/lab-base1.img",
			Backing: "/img/box_1.0.1_box.img", Allocation: 5316608},
	}, {
		name: "relative backing path is next to the volume",
		xml: `<volume><name>o.img</name><target><path>/img/o.img</path></target>
  <backingStore><path>base.img</path></backingStore></volume>`,
		want: Volume{Name: "o.img", Path: "/img/o.img", Backing: "/img/base.img"},
	}, {
		name: "no backing store",
		xml: `<volume><name>b.img</name><allocation>4096</allocation>
  <target><path>/img/b.img</path></target></volume>`,
		want: Volume{Name: "b.img", Path: "/img/b.img", Allocation: 4096},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVolume(tt.xml)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseVolume = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDomainFilesOfXML(t *testing.T) {
	x := `<domain type='qemu'><name>lab-base1</name>
  <os><type>hvm</type><kernel>/vd/1.0.1/libvirt/vmlinuz</kernel>
    <initrd>/vd/1.0.1/libvirt/initrd.img</initrd></os>
  <devices>
    <disk type='file' device='disk'><source file='/img/lab-base1.img' index='1'/>
      <backingStore type='file' index='2'><source file='/img/box.img'/>
        <backingStore type='file' index='3'><source file='/img/base.img'/>
          <backingStore/></backingStore></backingStore></disk>
    <disk type='file' device='cdrom'><source file='/img/seed.iso'/></disk>
    <disk type='network' device='disk'><source protocol='nbd' name='x'/></disk>
  </devices></domain>`
	name, files, err := domainFiles(x)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/vd/1.0.1/libvirt/vmlinuz", "/vd/1.0.1/libvirt/initrd.img",
		"/img/lab-base1.img", "/img/box.img", "/img/base.img", "/img/seed.iso"}
	if name != "lab-base1" || !reflect.DeepEqual(files, want) {
		t.Errorf("domainFiles = %s %v, want lab-base1 %v", name, files, want)
	}
}

// TestPoolVolumesAndDomainFilesOnHost creates a transient pool "hlb-pool"
// in a temp dir holding a base image and an overlay on it (qemu-img
// create -b), and an inert domain "hlb-dom" booting a kernel from that
// dir, and reads them back.
func TestPoolVolumesAndDomainFilesOnHost(t *testing.T) {
	c := dialTest(t)
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skipf("needs qemu-img: %v", err)
	}
	dir := t.TempDir()
	base, over := filepath.Join(dir, "base.img"), filepath.Join(dir, "over.img")
	qemuImg(t, "create", "-q", "-f", "qcow2", base, "16M")
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, over)
	dirPool(t, c, "hlb-pool", dir)
	vols, err := c.PoolVolumes("hlb-pool")
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 2 || vols[0].Name != "base.img" || vols[1].Name != "over.img" {
		t.Fatalf("volumes = %+v, want base.img and over.img", vols)
	}
	if vols[0].Backing != "" || vols[1].Backing != base || vols[1].Path != over {
		t.Errorf("volumes = %+v, want over.img at %s backed by %s", vols, over, base)
	}

	kernel := filepath.Join(dir, "vmlinuz")
	x := fmt.Sprintf(`<domain type='qemu'><name>hlb-dom</name><memory unit='MiB'>16</memory>
  <os><type arch='x86_64'>hvm</type><kernel>%s</kernel></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
    <source file='%s'/><target dev='vda' bus='virtio'/></disk></devices></domain>`,
		kernel, over)
	dom, err := c.l.DomainDefineXML(x)
	if err != nil {
		t.Fatalf("define domain hlb-dom: %v", err)
	}
	t.Cleanup(func() {
		if err := c.l.DomainUndefine(dom); err != nil && !isNotFound(err) {
			t.Errorf("undefine domain hlb-dom: %v", err)
		}
	})
	files, err := c.DomainFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{kernel, over} {
		if !reflect.DeepEqual(files[f], []string{"hlb-dom"}) {
			t.Errorf("domains using %s = %v, want [hlb-dom]", f, files[f])
		}
	}
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// dirPool creates a transient directory pool on dir, which it leaves.
func dirPool(t *testing.T, c *Conn, name, dir string) {
	t.Helper()
	x := fmt.Sprintf(`<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>`,
		name, dir)
	p, err := c.l.StoragePoolCreateXML(x, 0)
	if err != nil {
		t.Fatalf("create pool %q: %v", name, err)
	}
	t.Cleanup(func() {
		if err := c.l.StoragePoolDestroy(p); err != nil && !isNotFound(err) {
			t.Errorf("destroy pool %q: %v", name, err)
		}
	})
}
