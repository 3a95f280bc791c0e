// Package doctor checks a host for the faults that break a hybrid lab of
// VMs and containers on one Linux bridge, or on several bridges (segments)
// that the host routes between, and says how to fix each one. Checks of a
// bridge, its subnet, gateway or Docker network run once per segment and
// name the segment in their findings when the lab is routed; a routed lab
// is also checked for net.ipv4.ip_forward, the DOCKER-USER accepts between
// every ordered pair of lab bridges, and masquerade rules that would
// rewrite the source of traffic routed between segments.
//
// It works in two steps. Collect reads the host into a HostState, a plain
// snapshot that can be saved as JSON: iptables and ip6tables FORWARD state,
// the nat table's POSTROUTING rules, net.ipv4.ip_forward,
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
