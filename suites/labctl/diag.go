package labctl

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"hybridlab/provision/bridge"
	"hybridlab/provision/guard"
	"hybridlab/topology"
)

// ForwardReport describes in a few lines everything on the host that decides whether
// frames switched inside the lab bridge survive the IP firewall (faults B01, B02): whether
// br_netfilter is loaded, the global and per-bridge bridge-nf-call-iptables switches, the
// FORWARD policy, the DOCKER-USER chain with its counters, and the guard's own one-line
// verdict. Suites attach it to every failed VM↔container probe.
func ForwardReport(p *topology.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bridged-traffic firewall state for %s:\n", p.Bridge.Name)
	fmt.Fprintf(&b, "  br_netfilter module: %s\n", brNetfilterState())
	fmt.Fprintf(&b, "  net.bridge.bridge-nf-call-iptables = %s\n",
		readTrim("/proc/sys/net/bridge/bridge-nf-call-iptables"))
	fmt.Fprintf(&b, "  %s nf_call_iptables = %s\n", p.Bridge.Name,
		readTrim("/sys/class/net/"+p.Bridge.Name+"/bridge/nf_call_iptables"))
	fmt.Fprintf(&b, "  iptables FORWARD policy: %s\n", forwardPolicy())
	if pkts, ok := DockerUserAccepts(p); ok {
		fmt.Fprintf(&b, "  lab accept for %s in DOCKER-USER: present (%d packets)\n",
			p.Bridge.Name, pkts)
	} else {
		fmt.Fprintf(&b, "  lab accept for %s in DOCKER-USER: MISSING\n", p.Bridge.Name)
	}
	fmt.Fprintf(&b, "  iptables -vS DOCKER-USER:\n%s", indent(iptables("-vS", "DOCKER-USER")))
	fmt.Fprintf(&b, "  iptables -vS FORWARD (rules naming %s):\n%s", p.Bridge.Name,
		indent(grep(iptables("-vS", "FORWARD"), p.Bridge.Name)))
	if st, err := guard.Status(p.Lab); err != nil {
		fmt.Fprintf(&b, "  guard: %v\n", err)
	} else {
		fmt.Fprintf(&b, "  guard: %s\n", st.Explanation)
	}
	return b.String()
}

// DockerUserAccepts returns the packet count of the lab's accept rules in ip filter
// DOCKER-USER, and whether there is at least one such rule.
func DockerUserAccepts(p *topology.Plan) (uint64, bool) {
	st, err := guard.Status(p.Lab)
	if err != nil {
		return 0, false
	}
	var pkts uint64
	found := false
	for _, du := range st.DockerUser {
		if du.Family != "ip" {
			continue
		}
		for _, r := range du.Rules {
			// Quoted, so the management bridge (virbr-NAME) never passes for br-NAME.
			if strings.Contains(r.Rule, `"`+p.Bridge.Name+`"`) {
				pkts += r.Packets
				found = true
			}
		}
	}
	return pkts, found
}

// GuardDropped is the number of lab packets the guard dropped (or counted) on their way off
// the host.
func GuardDropped(p *topology.Plan) uint64 {
	st, err := guard.Status(p.Lab)
	if err != nil {
		return 0
	}
	return st.Dropped()
}

// BridgeSnapshot reads the comparable state of the lab bridge (fault B11).
func BridgeSnapshot(p *topology.Plan) (bridge.Snapshot, error) {
	return bridge.TakeSnapshot(p.Bridge.Name)
}

// brNetfilterState says whether bridged IPv4 can reach iptables at all: the sysctls exist
// only while br_netfilter is active, whether loaded as a module or built in.
func brNetfilterState() string {
	_, mod := os.Stat("/sys/module/br_netfilter")
	_, sysctl := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
	switch {
	case mod == nil:
		return "loaded (module)"
	case sysctl == nil:
		return "active (built into the kernel)"
	}
	return "not active (bridged frames bypass iptables)"
}

func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "absent (" + path + ")"
	}
	return strings.TrimSpace(string(data))
}

func forwardPolicy() string {
	for _, line := range strings.Split(iptables("-S", "FORWARD"), "\n") {
		if p, ok := strings.CutPrefix(line, "-P FORWARD "); ok {
			return p
		}
	}
	return "unknown"
}

// iptables runs `iptables -w ARGS` and returns its output without the warnings iptables-nft
// prints about legacy tables.
func iptables(args ...string) string {
	out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).Output()
	if err != nil {
		return fmt.Sprintf("iptables %s: %v\n", strings.Join(args, " "), err)
	}
	return string(out)
}

func grep(s, word string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, " "+word+" ") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return "(none)\n"
	}
	return strings.Join(out, "\n") + "\n"
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}
