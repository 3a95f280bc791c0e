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
// frames switched inside the lab bridges survive the IP firewall (faults B01, B02): whether
// br_netfilter is loaded, the global and per-bridge bridge-nf-call-iptables switches, the
// FORWARD policy, the DOCKER-USER chain with its counters, and the guard's own one-line
// verdict. For a routed lab it adds what routing between segments needs: ip_forward, the
// DOCKER-USER accept for every ordered pair of lab bridges, and the nat POSTROUTING rules
// naming lab subnets. Every lab bridge is described. Suites attach it to every failed probe.
func ForwardReport(p *topology.Plan) string {
	var b strings.Builder
	bridges := p.Bridges()
	fmt.Fprintf(&b, "bridged-traffic firewall state for %s:\n", strings.Join(bridges, ", "))
	fmt.Fprintf(&b, "  br_netfilter module: %s\n", brNetfilterState())
	fmt.Fprintf(&b, "  net.bridge.bridge-nf-call-iptables = %s\n",
		readTrim("/proc/sys/net/bridge/bridge-nf-call-iptables"))
	for _, br := range bridges {
		fmt.Fprintf(&b, "  %s nf_call_iptables = %s\n", br,
			readTrim("/sys/class/net/"+br+"/bridge/nf_call_iptables"))
	}
	fmt.Fprintf(&b, "  iptables FORWARD policy: %s\n", forwardPolicy())
	if p.Routed() {
		fmt.Fprintf(&b, "  net.ipv4.ip_forward = %s\n", readTrim("/proc/sys/net/ipv4/ip_forward"))
	}
	for _, in := range bridges {
		for _, out := range bridges {
			writeAccept(&b, p, in, out)
		}
	}
	fmt.Fprintf(&b, "  iptables -vS DOCKER-USER:\n%s", indent(iptables("-vS", "DOCKER-USER")))
	forward := iptables("-vS", "FORWARD")
	for _, br := range bridges {
		fmt.Fprintf(&b, "  iptables -vS FORWARD (rules naming %s):\n%s", br,
			indent(grep(forward, br)))
	}
	if p.Routed() {
		fmt.Fprintf(&b, "  iptables -t nat -vS POSTROUTING (rules naming lab subnets):\n%s",
			indent(grepAny(iptables("-t", "nat", "-vS", "POSTROUTING"), subnetWords(p))))
	}
	if st, err := guard.Status(p.Lab); err != nil {
		fmt.Fprintf(&b, "  guard: %v\n", err)
	} else {
		fmt.Fprintf(&b, "  guard: %s\n", st.Explanation)
	}
	return b.String()
}

func writeAccept(b *strings.Builder, p *topology.Plan, in, out string) {
	what := "lab accept for " + in
	if in != out {
		what = "lab accept for " + in + " -> " + out
	}
	if pkts, ok := DockerUserPairAccepts(p, in, out); ok {
		fmt.Fprintf(b, "  %s in DOCKER-USER: present (%d packets)\n", what, pkts)
		return
	}
	fmt.Fprintf(b, "  %s in DOCKER-USER: MISSING\n", what)
}

// DockerUserAccepts returns the packet count of the lab's accept rules in ip filter
// DOCKER-USER for frames switched inside the main segment's bridge (-i BR -o BR), and
// whether there is at least one such rule.
func DockerUserAccepts(p *topology.Plan) (uint64, bool) {
	return DockerUserPairAccepts(p, p.Bridge.Name, p.Bridge.Name)
}

// DockerUserPairAccepts returns the packet count of the lab's accept rules in ip filter
// DOCKER-USER for traffic entering through bridge in and leaving through bridge out (the
// same bridge for switched frames, two lab bridges for traffic the host routes between
// segments), and whether there is at least one such rule.
func DockerUserPairAccepts(p *topology.Plan, in, out string) (uint64, bool) {
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
			if strings.Contains(r.Rule, `iifname "`+in+`"`) &&
				strings.Contains(r.Rule, `oifname "`+out+`"`) {
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

// BridgeSnapshot reads the comparable state of the lab bridge (fault B11): the main
// segment's, or another segment's when p is p.View(segment).
func BridgeSnapshot(p *topology.Plan) (bridge.Snapshot, error) {
	return bridge.TakeSnapshot(p.Bridge.Name)
}

// BridgeSnapshots reads the comparable state of every lab bridge, by bridge name.
func BridgeSnapshots(p *topology.Plan) (map[string]bridge.Snapshot, error) {
	out := map[string]bridge.Snapshot{}
	for _, br := range p.Bridges() {
		s, err := bridge.TakeSnapshot(br)
		if err != nil {
			return nil, err
		}
		out[br] = s
	}
	return out, nil
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

// subnetWords are the lab subnets as iptables -S prints them.
func subnetWords(p *topology.Plan) []string {
	var out []string
	for _, s := range p.Subnets() {
		out = append(out, s.String())
	}
	return out
}

// grepAny keeps the lines holding any of words as a whole field.
func grepAny(s string, words []string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(line+" ", " "+w+" ") {
				out = append(out, line)
				break
			}
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
