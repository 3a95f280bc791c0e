// Package doctor checks a host for the faults that break a hybrid lab of
// VMs and containers on one Linux bridge, and says how to fix each one.
//
// It works in two steps. Collect reads the host into a HostState, a plain
// snapshot that can be saved as JSON: iptables and ip6tables FORWARD state,
// iptables-legacy rules, br_netfilter switches, nftables base chains,
// links, bridges, addresses and routes, Docker networks and endpoints,
// libvirt networks, listeners on port 53, IPv6 availability, pid files,
// and the lab dnsmasq's leases. Run then applies every registered Check to
// the plan and the snapshot; checks never read the host, so recorded states
// test them without root. Report renders the findings as a table or JSON.
//
// Collect only reads. Iptables, nftables, netlink, the sysctls and the
// socket tables are read in the network namespace of the calling OS thread,
// so the doctor can examine a namespace as well as the host.
package doctor
