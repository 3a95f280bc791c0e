package deps

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KernelFacts are the kernel switches that decide whether lab traffic is
// forwarded and filtered. They are read from /proc/sys of the calling
// thread's network namespace (`sysctl net.bridge net.ipv4.ip_forward …`).
// br_netfilter and bridge are built into the kernels hybridlab targets and
// /proc/modules may not exist, so module lists are not consulted.
type KernelFacts struct {
	// BrNetfilter is true when br_netfilter is present (net.bridge exists).
	BrNetfilter bool
	// NFCallIPTables: bridged IPv4 frames traverse iptables/nft hooks
	// (net.bridge.bridge-nf-call-iptables).
	NFCallIPTables bool
	// NFCallIP6Tables is the same for IPv6.
	NFCallIP6Tables bool
	// IPForward is net.ipv4.ip_forward.
	IPForward bool
	// IPv6 is false when the kernel has IPv6 off (no net.ipv6, or
	// net.ipv6.conf.all.disable_ipv6=1).
	IPv6 bool
	// IPv6Forward is net.ipv6.conf.all.forwarding.
	IPv6Forward bool
}

// ReadKernelFacts reads the facts from /proc/sys.
func ReadKernelFacts() (KernelFacts, error) { return readKernelFacts("/proc/sys") }

func readKernelFacts(root string) (KernelFacts, error) {
	var k KernelFacts
	var err error
	flag := func(rel string) bool {
		if err != nil {
			return false
		}
		var on bool
		on, err = readSysctl(filepath.Join(root, rel))
		return on
	}
	k.IPForward = flag("net/ipv4/ip_forward")
	if exists(filepath.Join(root, "net/bridge")) {
		k.BrNetfilter = true
		k.NFCallIPTables = flag("net/bridge/bridge-nf-call-iptables")
		k.NFCallIP6Tables = flag("net/bridge/bridge-nf-call-ip6tables")
	}
	if exists(filepath.Join(root, "net/ipv6")) {
		k.IPv6 = !flag("net/ipv6/conf/all/disable_ipv6")
		k.IPv6Forward = flag("net/ipv6/conf/all/forwarding")
	}
	return k, err
}

func readSysctl(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read kernel setting: %w", err)
	}
	return strings.TrimSpace(string(b)) != "0", nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Notes explains, one line each, what the facts mean for the lab.
func (k KernelFacts) Notes() []string {
	var out []string
	if k.NFCallIPTables {
		out = append(out, "bridge-nf-call-iptables=1: frames switched inside the lab "+
			"bridge pass the iptables FORWARD chain, which dockerd sets to DROP "+
			"(faults B01/B02); the guard's DOCKER-USER accept lets them through")
	}
	if k.NFCallIP6Tables && k.IPv6 {
		out = append(out, "bridge-nf-call-ip6tables=1: the same holds for bridged IPv6, "+
			"neighbour discovery included (fault B04)")
	}
	if !k.BrNetfilter {
		out = append(out, "br_netfilter is absent: bridged frames skip iptables, "+
			"so no FORWARD rule affects lab traffic inside the bridge")
	}
	if !k.IPForward {
		out = append(out, "net.ipv4.ip_forward=0: containers cannot reach the host's "+
			"other networks until dockerd enables it (inside the lab bridge this "+
			"does not matter)")
	}
	if !k.IPv6 {
		out = append(out, "IPv6 is disabled in the kernel: IPv6 suites will be skipped, and "+
			"Vagrantfiles must turn guest IPv6 off (fault B05)")
	}
	return out
}
