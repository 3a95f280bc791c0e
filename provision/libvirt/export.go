package libvirt

import "hybridlab/topology"

// NetworkPrefixes lists every libvirt network's IPv4 prefixes with its
// bridge, for the host-overlap check (`virsh net-dumpxml` of each).
func (c *Conn) NetworkPrefixes() ([]topology.NamedPrefix, error) { return c.networkPrefixes() }
