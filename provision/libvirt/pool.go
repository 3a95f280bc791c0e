package libvirt

import (
	"fmt"
	"sort"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// PoolExists reports whether a storage pool is defined, like `virsh
// pool-info NAME`.
func (c *Conn) PoolExists(name string) (bool, error) {
	_, err := c.l.StoragePoolLookupByName(name)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up storage pool %q: %w", name, err)
	}
	return true, nil
}

// Volumes lists the names of volumes in pool that start with prefix,
// sorted, like `virsh vol-list POOL`. A missing pool has none. A prefix
// does not tell whose a volume is; see DomainVolumes.
func (c *Conn) Volumes(pool, prefix string) ([]string, error) {
	vols, err := c.listVolumes(pool)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vols {
		if strings.HasPrefix(v.Name, prefix) {
			out = append(out, v.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// listVolumes refreshes pool and lists its volumes (`virsh pool-refresh`
// then `virsh vol-list`); a missing pool has none.
func (c *Conn) listVolumes(pool string) ([]golibvirt.StorageVol, error) {
	p, err := c.l.StoragePoolLookupByName(pool)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up storage pool %q: %w", pool, err)
	}
	if err := c.l.StoragePoolRefresh(p, 0); err != nil {
		return nil, fmt.Errorf("refresh storage pool %q: %w", pool, err)
	}
	vols, _, err := c.l.StoragePoolListAllVolumes(p, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("list volumes of pool %q: %w", pool, err)
	}
	return vols, nil
}

// RemoveVolumes deletes the named volumes in pool, like `virsh vol-delete
// --pool POOL NAME`, and returns the names deleted. A missing pool or
// volume is not an error.
func (c *Conn) RemoveVolumes(pool string, names ...string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	p, err := c.l.StoragePoolLookupByName(pool)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up storage pool %q: %w", pool, err)
	}
	var done []string
	for _, name := range names {
		vol, err := c.l.StorageVolLookupByName(p, name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return done, fmt.Errorf("look up volume %q: %w", name, err)
		}
		if err := c.l.StorageVolDelete(vol, 0); err != nil && !isNotFound(err) {
			return done, fmt.Errorf("delete volume %q in pool %q: %w", name, pool, err)
		}
		done = append(done, name)
	}
	return done, nil
}

// RemovePool stops and undefines a storage pool without deleting its
// directory's other contents, like `virsh pool-destroy` + `virsh
// pool-undefine`. An absent pool is not an error.
func (c *Conn) RemovePool(name string) error {
	p, err := c.l.StoragePoolLookupByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up storage pool %q: %w", name, err)
	}
	// An inactive pool answers "operation invalid"; it only needs undefining.
	if err := c.l.StoragePoolDestroy(p); err != nil && !isNotFound(err) &&
		!hasCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("stop storage pool %q: %w", name, err)
	}
	if err := c.l.StoragePoolUndefine(p); err != nil && !isNotFound(err) {
		return fmt.Errorf("undefine storage pool %q: %w", name, err)
	}
	return nil
}
