package box

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"hybridlab/provision/libvirt"
)

const (
	testImages = "/images"
	testHome   = "/vd"
)

// ver is a version with a cache dir, a Vagrant dir and a pool volume, as
// inventory finds them; age orders the builds (higher is older).
func ver(v string, age int) Version {
	vol := volumePrefix(DefaultName) + v + volumeSuffix
	return Version{
		Version:    v,
		CacheDir:   "/cache/" + v,
		VagrantDir: testHome + "/boxes/hybridlab-VAGRANTSLASH-debian12/" + v,
		Volume:     vol, VolumePath: testImages + "/" + vol,
		stamp: time.Unix(1e9, 0).Add(-time.Duration(age) * time.Hour),
	}
}

func volOf(v Version) string { return testImages + "/" + v.Volume }

func TestSelectVersions(t *testing.T) {
	a, b, c := ver("1.0.1", 3), ver("1.0.2", 2), ver("1.0.3", 1)
	uncached := b
	uncached.CacheDir = ""
	tests := []struct {
		name     string
		want     string
		found    []Version
		vols     []libvirt.Volume
		files    map[string][]string
		machines map[string][]string
		current  string
		// keep maps a kept version to parts of its reasons, split by " & ".
		keep   map[string]string
		remove []string
	}{{
		name: "keeps only the current build when nothing is in use", want: "1.0.2",
		found: []Version{a, b, c}, current: "1.0.2",
		keep:   map[string]string{"1.0.2": "current (the build"},
		remove: []string{"1.0.1", "1.0.3"},
	}, {
		name: "keeps a version whose volume backs a VM disk", want: "1.0.3",
		found: []Version{a, b, c},
		vols: []libvirt.Volume{
			{Name: a.Volume, Path: volOf(a)},
			{Name: "lab-vm1.img", Path: testImages + "/lab-vm1.img", Backing: volOf(a)},
			{Name: "lab-vm2.img", Path: testImages + "/lab-vm2.img", Backing: volOf(a)},
		},
		current: "1.0.3",
		keep: map[string]string{"1.0.3": "current",
			"1.0.1": "backing file of volume lab-vm2.img"},
		remove: []string{"1.0.2"},
	}, {
		name: "keeps a version backing a disk through another path to its file",
		want: "1.0.3", found: []Version{a, b, c},
		vols: []libvirt.Volume{{Name: "x.img", Path: "/other/x.img",
			Backing: "/srv/pool-link/" + b.Volume}},
		current: "1.0.3",
		keep:    map[string]string{"1.0.3": "current", "1.0.2": "backing file of volume x.img"},
		remove:  []string{"1.0.1"},
	}, {
		name: "a disk backed by another image keeps no version", want: "1.0.3",
		found: []Version{a, b, c},
		vols: []libvirt.Volume{{Name: "x.img", Path: testImages + "/x.img",
			Backing: testImages + "/debian.qcow2"}},
		current: "1.0.3",
		keep:    map[string]string{"1.0.3": "current"},
		remove:  []string{"1.0.1", "1.0.2"},
	}, {
		name: "keeps a version whose kernel a defined domain boots", want: "1.0.3",
		found: []Version{a, b, c},
		files: map[string][]string{
			a.VagrantDir + "/libvirt/vmlinuz":         {"other-base1"},
			"/var/lib/libvirt/images/other-base1.img": {"other-base1"},
			a.VagrantDir + "-not/libvirt/vmlinuz":     {"other-x"},
		},
		current: "1.0.3",
		keep:    map[string]string{"1.0.3": "current", "1.0.1": "used by domain other-base1"},
		remove:  []string{"1.0.2"},
	}, {
		name: "keeps a version a domain's live backing chain names", want: "1.0.3",
		found:   []Version{a, b, c},
		files:   map[string][]string{volOf(b): {"lab-vm1", "lab-vm2"}},
		current: "1.0.3",
		keep:    map[string]string{"1.0.3": "current", "1.0.2": "used by domain lab-vm2"},
		remove:  []string{"1.0.1"},
	}, {
		name: "keeps a version a Vagrant machine was made from", want: "1.0.3",
		found: []Version{a, b, c}, machines: map[string][]string{"1.0.1": {"lab-base2"}},
		current: "1.0.3",
		keep:    map[string]string{"1.0.3": "current", "1.0.1": "vagrant machine lab-base2"},
		remove:  []string{"1.0.2"},
	}, {
		name: "keeps the newest build when the current inputs are not built",
		want: "9.9.9", found: []Version{a, b, c}, current: "1.0.3",
		keep:   map[string]string{"1.0.3": "newest build"},
		remove: []string{"1.0.1", "1.0.2"},
	}, {
		name: "a current version only in Vagrant and the pool is not built",
		want: "1.0.2", found: []Version{a, uncached, c}, current: "1.0.3",
		keep:   map[string]string{"1.0.3": "newest build"},
		remove: []string{"1.0.1", "1.0.2"},
	}, {
		name: "current and in use keeps both reasons", want: "1.0.1",
		found:   []Version{a, b},
		vols:    []libvirt.Volume{{Name: "vm.img", Backing: volOf(a)}},
		current: "1.0.1",
		keep: map[string]string{
			"1.0.1": "current (the build & backing file of volume vm.img"},
		remove: []string{"1.0.2"},
	}, {
		name: "nothing on the host", want: "1.0.1", current: "1.0.1",
		keep: map[string]string{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current, remove, keep := selectVersions(tt.want, tt.found, tt.vols, tt.files,
				tt.machines)
			if current != tt.current {
				t.Errorf("current = %s, want %s", current, tt.current)
			}
			if got := versionsOf(remove); !reflect.DeepEqual(got, tt.remove) {
				t.Errorf("remove = %v, want %v", got, tt.remove)
			}
			if len(keep) != len(tt.keep) {
				t.Errorf("keep = %v, want %v", versionsOf(keep), tt.keep)
			}
			for _, v := range keep {
				why := strings.Join(v.Why, "; ")
				want, ok := tt.keep[v.Version]
				if !ok {
					t.Errorf("keep %s because %q, want it removed", v.Version, why)
				}
				for _, part := range strings.Split(want, " & ") {
					if !strings.Contains(why, part) {
						t.Errorf("keep %s because %q, want a reason with %q", v.Version, why,
							part)
					}
				}
			}
		})
	}
}

func versionsOf(vs []Version) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func TestParseMachines(t *testing.T) {
	dir := t.TempDir()
	index := `{"version":1,"machines":{
 "a":{"name":"lab-base1","vagrantfile_path":"` + dir + `",
      "extra_data":{"box":{"name":"hybridlab/debian12","version":"1.0.1"}}},
 "b":{"name":"lab-gone","vagrantfile_path":"` + dir + `/gone",
      "extra_data":{"box":{"name":"hybridlab/debian12","version":"1.0.2"}}},
 "c":{"name":"other","vagrantfile_path":"` + dir + `",
      "extra_data":{"box":{"name":"someone/else","version":"1.0.3"}}},
 "d":{"name":"lab-base0","vagrantfile_path":"` + dir + `",
      "extra_data":{"box":{"name":"hybridlab/debian12","version":"1.0.1"}}}}}`
	got, err := parseMachines([]byte(index), DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"1.0.1": {"lab-base0", "lab-base1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("machines = %v, want %v", got, want)
	}
}

// fakeVirt is a storage pool and the domains' files, in memory.
type fakeVirt struct {
	vols    []libvirt.Volume
	files   map[string][]string
	deleted []string
}

func (f *fakeVirt) PoolVolumes(string) ([]libvirt.Volume, error) { return f.vols, nil }

func (f *fakeVirt) DomainFiles() (map[string][]string, error) { return f.files, nil }

func (f *fakeVirt) RemoveVolumes(_ string, names ...string) ([]string, error) {
	f.deleted = append(f.deleted, names...)
	return names, nil
}

// TestPruneOnFakeHost prunes a temp cache and VAGRANT_HOME (emptied
// version directories, so no vagrant call) and a fake pool in which one
// old version backs a VM disk.
func TestPruneOnFakeHost(t *testing.T) {
	cache, home := t.TempDir(), t.TempDir()
	boxes := filepath.Join(home, "boxes", "hybridlab-VAGRANTSLASH-debian12")
	fv := &fakeVirt{}
	mk := func(name, key, version string) string {
		b := &Box{Name: name, Version: version, Key: key, Dir: filepath.Join(cache, key)}
		b.File = filepath.Join(b.Dir, "x.box")
		mustWrite(t, b.File, "box")
		if err := writeRecord(b); err != nil {
			t.Fatal(err)
		}
		mustMkdir(t, filepath.Join(home, "boxes", vagrantName(name), version))
		vol := volumePrefix(name) + version + volumeSuffix
		fv.vols = append(fv.vols, libvirt.Volume{Name: vol, Path: "/img/" + vol,
			Allocation: 1 << 20})
		return b.Dir
	}
	current := mk(DefaultName, "aaaa", "1.0.1")
	old := mk(DefaultName, "bbbb", "1.0.2")
	used := mk(DefaultName, "cccc", "1.0.3")
	other := mk("someone/else", "dddd", "1.0.4")
	fv.vols = append(fv.vols, libvirt.Volume{Name: "lab-vm.img", Path: "/img/lab-vm.img",
		Backing: "/img/" + volumePrefix(DefaultName) + "1.0.3" + volumeSuffix})
	mustMkdir(t, filepath.Join(boxes, "1.0.9"))

	o := Options{CacheDir: cache, VagrantHome: home, Virt: fv}.withDefaults()
	pr, err := prune(context.Background(), o, "1.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(pr.Removed); !reflect.DeepEqual(got, []string{"1.0.2", "1.0.9"}) {
		t.Errorf("removed %v, want [1.0.2 1.0.9]", got)
	}
	if got := versionsOf(pr.Kept); !reflect.DeepEqual(got, []string{"1.0.1", "1.0.3"}) {
		t.Errorf("kept %v, want [1.0.1 1.0.3]", got)
	}
	wantDeleted := []string{volumePrefix(DefaultName) + "1.0.2" + volumeSuffix}
	if !reflect.DeepEqual(fv.deleted, wantDeleted) {
		t.Errorf("deleted volumes %v, want %v", fv.deleted, wantDeleted)
	}
	if pr.Freed < 1<<20 {
		t.Errorf("freed %d bytes, want at least the 1 MiB volume", pr.Freed)
	}
	for dir, want := range map[string]bool{current: true, old: false, used: true, other: true,
		filepath.Join(boxes, "1.0.1"): true, filepath.Join(boxes, "1.0.2"): false,
		filepath.Join(boxes, "1.0.3"): true, filepath.Join(boxes, "1.0.9"): false} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", dir, err == nil, want)
		}
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestPruneOnHostPool prunes box "hlbtest/box" from a transient libvirt
// pool "hlb-pool" in a temp dir (virsh pool-create-as) holding three
// versions' volumes, one the backing file of a VM disk made with qemu-img
// create -b, and a temp cache and VAGRANT_HOME. The real pools are only
// read (domains' files).
func TestPruneOnHostPool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pruning a libvirt pool needs root")
	}
	for _, tool := range []string{"virsh", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	conn, err := libvirt.Dial("")
	if err != nil {
		t.Skipf("needs libvirtd: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	const name, pool = "hlbtest/box", "hlb-pool"
	cache, home, dir := t.TempDir(), t.TempDir(), t.TempDir()
	vol := func(v string) string { return filepath.Join(dir, volumePrefix(name)+v+volumeSuffix) }
	for i, v := range []string{"1.0.1", "1.0.2", "1.0.3"} {
		b := &Box{Name: name, Version: v, Key: fmt.Sprint(i), Dir: filepath.Join(cache, v)}
		b.File = filepath.Join(b.Dir, "x.box")
		mustWrite(t, b.File, "box")
		if err := writeRecord(b); err != nil {
			t.Fatal(err)
		}
		mustMkdir(t, filepath.Join(home, "boxes", vagrantName(name), v))
		runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", vol(v), "16M")
	}
	runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", vol("1.0.3"),
		filepath.Join(dir, "hlb-vm.img"))
	runTool(t, "virsh", "-c", "qemu:///system", "pool-create-as", pool, "dir", "--target", dir)
	t.Cleanup(func() { _ = exec.Command("virsh", "-c", "qemu:///system", "pool-destroy", pool).Run() })

	o := Options{Name: name, CacheDir: cache, VagrantHome: home, Pool: pool, Virt: conn}
	pr, err := prune(context.Background(), o.withDefaults(), "1.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(pr.Removed); !reflect.DeepEqual(got, []string{"1.0.2"}) {
		t.Errorf("removed %v, want [1.0.2]", got)
	}
	vols, err := conn.PoolVolumes(pool)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, v := range vols {
		left = append(left, v.Path)
	}
	want := []string{filepath.Join(dir, "hlb-vm.img"), vol("1.0.1"), vol("1.0.3")}
	if !reflect.DeepEqual(left, want) {
		t.Errorf("pool holds %v, want %v", left, want)
	}
	if _, err := os.Stat(filepath.Join(cache, "1.0.2")); err == nil {
		t.Error("cache dir of 1.0.2 is still there")
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
