package libvirt

import (
	"encoding/xml"
	"fmt"
	"path/filepath"
	"sort"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// Volume is one volume of a storage pool, as `virsh vol-dumpxml` shows it.
type Volume struct {
	Name string `json:"name"`
	// Path is the volume's file (target path).
	Path string `json:"path"`
	// Backing is the path of the file the volume is an overlay of (its
	// backingStore, e.g. a VM disk on the box image); empty for none.
	Backing string `json:"backing,omitempty"`
	// Allocation is the bytes the volume takes on disk.
	Allocation uint64 `json:"allocation"`
}

type volumeDoc struct {
	Name       string `xml:"name"`
	Allocation uint64 `xml:"allocation"`
	Target     struct {
		Path string `xml:"path"`
	} `xml:"target"`
	BackingStore struct {
		Path string `xml:"path"`
	} `xml:"backingStore"`
}

// parseVolume reads a volume's XML. A relative backing path is taken
// relative to the volume's directory, as QEMU does.
func parseVolume(x string) (Volume, error) {
	var doc volumeDoc
	if err := xml.Unmarshal([]byte(x), &doc); err != nil {
		return Volume{}, err
	}
	v := Volume{Name: doc.Name, Path: doc.Target.Path, Backing: doc.BackingStore.Path,
		Allocation: doc.Allocation}
	if v.Backing != "" && !filepath.IsAbs(v.Backing) {
		v.Backing = filepath.Join(filepath.Dir(v.Path), v.Backing)
	}
	return v, nil
}

// PoolVolumes lists every volume of pool with its path, backing file and
// allocation, sorted by name, like `virsh vol-list --details POOL` +
// `virsh vol-dumpxml` of each. A missing pool has none. A volume deleted
// while listing is left out.
func (c *Conn) PoolVolumes(pool string) ([]Volume, error) {
	vols, err := c.listVolumes(pool)
	if err != nil {
		return nil, err
	}
	var out []Volume
	for _, vol := range vols {
		x, err := c.l.StorageVolGetXMLDesc(vol, 0)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read volume %q in pool %q: %w", vol.Name, pool, err)
		}
		v, err := parseVolume(x)
		if err != nil {
			return nil, fmt.Errorf("parse volume %q in pool %q: %w", vol.Name, pool, err)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type domainFilesDoc struct {
	Name string `xml:"name"`
	OS   struct {
		Kernel string `xml:"kernel"`
		Initrd string `xml:"initrd"`
	} `xml:"os"`
	Disks []diskDoc `xml:"devices>disk"`
}

type diskDoc struct {
	Source struct {
		File string `xml:"file,attr"`
	} `xml:"source"`
	BackingStore *backingDoc `xml:"backingStore"`
}

type backingDoc struct {
	Source struct {
		File string `xml:"file,attr"`
	} `xml:"source"`
	BackingStore *backingDoc `xml:"backingStore"`
}

// domainFiles returns the files a domain's XML names: kernel, initrd,
// disk sources and their backing chains (live XML lists those).
func domainFiles(x string) (name string, files []string, err error) {
	var doc domainFilesDoc
	if err := xml.Unmarshal([]byte(x), &doc); err != nil {
		return "", nil, err
	}
	add := func(f string) {
		if f != "" {
			files = append(files, f)
		}
	}
	add(doc.OS.Kernel)
	add(doc.OS.Initrd)
	for _, d := range doc.Disks {
		add(d.Source.File)
		for b := d.BackingStore; b != nil; b = b.BackingStore {
			add(b.Source.File)
		}
	}
	return doc.Name, files, nil
}

// DomainFiles maps every file that a domain, running or only defined,
// refers to (kernel, initrd, disks and the disks' backing files) to the
// names of those domains, like `virsh dumpxml` of each domain of `virsh
// list --all`.
func (c *Conn) DomainFiles() (map[string][]string, error) {
	doms, _, err := c.l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("list libvirt domains: %w", err)
	}
	out := map[string][]string{}
	for _, dom := range doms {
		files, err := c.filesOf(dom)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			out[f] = append(out[f], dom.Name)
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}

// filesOf reads both the live and the persistent XML: the live one names
// the backing chain, the persistent one what the next start will use.
func (c *Conn) filesOf(dom golibvirt.Domain) ([]string, error) {
	var files []string
	seen := map[string]bool{}
	for _, flags := range []golibvirt.DomainXMLFlags{0, golibvirt.DomainXMLInactive} {
		x, err := c.l.DomainGetXMLDesc(dom, flags)
		if err != nil {
			return nil, fmt.Errorf("read domain %q: %w", dom.Name, err)
		}
		_, fs, err := domainFiles(x)
		if err != nil {
			return nil, fmt.Errorf("parse domain %q: %w", dom.Name, err)
		}
		for _, f := range fs {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files, nil
}
