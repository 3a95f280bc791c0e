package doctor

import (
	"fmt"
	"strings"

	"hybridlab/topology"
)

// checkForwardDrop finds the state in which bridged lab traffic is
// discarded: br_netfilter passes frames on the lab bridge through the
// FORWARD hook, FORWARD's policy is DROP (Docker sets it) and no rule
// accepts traffic that enters and leaves the lab bridge. IPv4 and IPv6 are
// judged separately, so a working IPv4 path cannot hide a broken IPv6 one.
// Each segment's bridge is judged on its own.
func checkForwardDrop(plan *topology.Plan, s *HostState) []Finding {
	return perSegment(plan, func(v *topology.Plan) []Finding { return forwardDropOn(v, s) })
}

func forwardDropOn(plan *topology.Plan, s *HostState) []Finding {
	var out []Finding
	br, _ := s.Bridge(plan.Bridge.Name)
	fams := []struct {
		fw        Firewall
		tool      string
		global    int
		perBridge int
		sysctl    string
	}{
		{s.IPv4, "iptables", s.BrNF.CallIptables, br.NFCallIptables,
			"net.bridge.bridge-nf-call-iptables"},
		{s.IPv6, "ip6tables", s.BrNF.CallIP6tables, br.NFCallIP6tables,
			"net.bridge.bridge-nf-call-ip6tables"},
	}
	for _, f := range fams {
		perBridge := f.perBridge == 1
		if !f.fw.Read || f.fw.ForwardPolicy != "DROP" || (f.global != 1 && !perBridge) {
			continue
		}
		if rule := bridgeAccept(f.fw.Rules, plan.Bridge.Name); rule != "" {
			continue
		}
		why := fmt.Sprintf("%s=%d", f.sysctl, f.global)
		if perBridge {
			why += fmt.Sprintf(", nf_call_%s=1 on %s", f.tool, plan.Bridge.Name)
		}
		out = append(out, forwardDropFinding(plan, s, f.fw, f.tool, why))
	}
	return out
}

func forwardDropFinding(plan *topology.Plan, s *HostState, fw Firewall, tool, why string) Finding {
	br := plan.Bridge.Name
	chain := "FORWARD"
	cause := "nothing that looks like Docker"
	if fw.DockerUser {
		chain = "DOCKER-USER"
		cause = "Docker (dockerd sets the FORWARD policy to DROP when it starts)"
	}
	sev := Error
	fix := fmt.Sprintf("%s -I %s -i %s -o %s -j ACCEPT", tool, chain, br, br)
	if s.Phase == PhaseBefore {
		sev = Warn
		fix = "`go run ./setup up` installs it; by hand: " + fix
	}
	return Finding{
		ID:       IDForwardDrop,
		Severity: sev,
		Object:   tool + " FORWARD / " + br,
		Evidence: fmt.Sprintf("%s FORWARD policy DROP, %s, no ACCEPT for -i %s -o %s; "+
			"likely cause: %s", tool, why, br, br, cause),
		Cost: fmt.Sprintf("frames switched on %s pass the %s FORWARD hook and are dropped: "+
			"ARP works, but VMs and containers cannot exchange %s packets", br, tool,
			ipFamily(tool)),
		Fix: fix,
	}
}

func ipFamily(tool string) string {
	if tool == "ip6tables" {
		return "IPv6"
	}
	return "IPv4"
}

// bridgeAccept returns the first live rule that accepts every packet
// entering and leaving bridge, or "". A rule after an unconditional RETURN,
// DROP or REJECT of its chain is dead (`iptables -A` puts it there), and
// DOCKER-USER rules count only while FORWARD jumps to DOCKER-USER.
func bridgeAccept(rules []string, bridge string) string {
	return pairAccept(rules, bridge, bridge)
}

// pairAccept returns the first live rule that accepts every packet entering
// through in and leaving through out, or "" (see bridgeAccept).
func pairAccept(rules []string, in, out string) string {
	ended := map[string]bool{}
	jumps := false
	for _, r := range rules {
		f := strings.Fields(r)
		if len(f) < 2 || ended[f[1]] {
			continue
		}
		if len(f) == 4 && f[2] == "-j" {
			switch f[3] {
			case "RETURN", "DROP", "REJECT":
				ended[f[1]] = true
			case "DOCKER-USER":
				jumps = jumps || f[1] == "FORWARD"
			}
			continue
		}
		if f[1] == "DOCKER-USER" && !jumps {
			continue
		}
		if isPairAccept(f, in, out) {
			return r
		}
	}
	return ""
}

func isPairAccept(f []string, wantIn, wantOut string) bool {
	if len(f) < 2 || f[0] != "-A" || (f[1] != "FORWARD" && f[1] != "DOCKER-USER") {
		return false
	}
	var in, out, target string
	for i := 2; i < len(f); i++ {
		if i+1 >= len(f) {
			return false
		}
		switch f[i] {
		case "-i":
			in = f[i+1]
		case "-o":
			out = f[i+1]
		case "-j":
			target = f[i+1]
		case "-m":
			if f[i+1] != "comment" {
				return false
			}
		case "--comment":
			i += commentLen(f[i+1:]) - 1
		default:
			return false
		}
		i++
	}
	return in == wantIn && out == wantOut && target == "ACCEPT"
}

// commentLen counts the fields of a quoted comment value.
func commentLen(f []string) int {
	if len(f) == 0 || !strings.HasPrefix(f[0], `"`) {
		return 1
	}
	for i, w := range f {
		if (i > 0 || len(w) > 1) && strings.HasSuffix(w, `"`) {
			return i + 1
		}
	}
	return len(f)
}

// checkIptablesMixed finds iptables-legacy rules next to nftables rules:
// both filter the same packets, and each tool shows only its own half.
func checkIptablesMixed(_ *topology.Plan, s *HostState) []Finding {
	legacy := append(append([]string(nil), s.Legacy.Rules...), s.Legacy.Rules6...)
	if len(legacy) == 0 {
		return nil
	}
	if len(s.IPv4.Rules) == 0 && len(s.IPv6.Rules) == 0 && len(s.NFTTables) == 0 {
		return nil
	}
	return []Finding{{
		ID:       IDIptablesMixed,
		Severity: Warn,
		Object:   "iptables-legacy",
		Evidence: fmt.Sprintf("%d iptables-legacy rules (%s) next to nftables tables (%s)",
			len(legacy), firstN(legacy, 2), tableNames(s.NFTTables)),
		Cost: "packets traverse both rule sets; a DROP in the legacy tables discards lab " +
			"traffic while `iptables -S` (nft backend) shows nothing wrong",
		Fix: strings.Join(append(moveLegacy("iptables", "4", s.Legacy.Rules),
			moveLegacy("ip6tables", "6", s.Legacy.Rules6)...), " && "),
	}}
}

// moveLegacy returns the commands that copy one family's legacy rules into
// nftables and then empty the legacy tables holding them.
func moveLegacy(tool, fam string, rules []string) []string {
	if len(rules) == 0 {
		return nil
	}
	file := "legacy" + fam + ".rules"
	cmds := []string{
		fmt.Sprintf("%s-legacy-save > %s", tool, file),
		fmt.Sprintf("%s-restore-translate -f %s | nft -f -", tool, file),
	}
	seen := map[string]bool{}
	for _, r := range rules {
		f := strings.Fields(r)
		if len(f) < 2 || seen[f[1]] {
			continue
		}
		seen[f[1]] = true
		cmds = append(cmds, fmt.Sprintf("%s-legacy -t %s -F", tool, f[1]),
			fmt.Sprintf("%s-legacy -t %s -X", tool, f[1]))
	}
	return cmds
}

func firstN(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:n], "; ") + "; …"
}

func tableNames(ts []NFTTable) string {
	var names []string
	for _, t := range ts {
		names = append(names, t.Family+" "+t.Name)
	}
	return firstN(names, 4)
}

// iptablesTables are the nft tables iptables-nft owns; FORWARD_DROP_BRNF
// reads them through iptables.
var iptablesTables = map[string]bool{
	"filter": true, "nat": true, "mangle": true, "raw": true, "security": true,
}

// checkNFTForeignDrop finds base chains of other nftables tables that drop
// lab traffic. Every base chain on a hook must accept a packet for it to
// pass, so an accept elsewhere cannot undo such a drop. In a routed lab the
// forward hook carries traffic between segments whatever br_netfilter says,
// so forward chains count there too.
func checkNFTForeignDrop(plan *topology.Plan, s *HostState) []Finding {
	var out []Finding
	bridged := s.BrNF.CallIptables == 1
	for _, name := range plan.Bridges() {
		br, _ := s.Bridge(name)
		bridged = bridged || br.NFCallIptables == 1
	}
	for _, c := range s.NFT {
		if c.Table == plan.NFTable || foreignIgnored(c) {
			continue
		}
		if c.Hook == "forward" && c.Family != "bridge" && !bridged && !plan.Routed() {
			continue
		}
		if d := chainDrops(plan, c); d.why != "" {
			out = append(out, nftDropFinding(plan, c, d))
		}
	}
	return out
}

func foreignIgnored(c NFTChain) bool {
	if c.Hook != "forward" && c.Hook != "input" {
		return true
	}
	return (c.Family == "ip" || c.Family == "ip6") && iptablesTables[c.Table]
}

// dropCause is why a chain drops lab traffic: a rule (handle > 0) or the
// policy (handle 0). why is "" when it does not.
type dropCause struct {
	why    string
	handle uint64
}

// chainDrops says why chain c drops lab traffic. Rules are read in order:
// an accept on the lab bridges' names alone that comes first lets lab
// traffic through whatever follows.
func chainDrops(plan *topology.Plan, c NFTChain) dropCause {
	for _, r := range c.Rules {
		if r.Verdict == "accept" {
			if labAccept(plan, r) {
				return dropCause{}
			}
			continue
		}
		if why := ruleDrops(plan, r); why != "" {
			return dropCause{why: why, handle: r.Handle}
		}
	}
	if c.Policy == "drop" {
		return dropCause{why: "policy drop"}
	}
	return dropCause{}
}

func labAccept(plan *topology.Plan, r NFTRule) bool {
	if !r.OnlyIfnames || len(r.Ifnames) == 0 {
		return false
	}
	for _, n := range r.Ifnames {
		if !isLabBridge(plan, n) {
			return false
		}
	}
	return true
}

func ruleDrops(plan *topology.Plan, r NFTRule) string {
	if r.Unconditional {
		return fmt.Sprintf("rule handle %d drops every packet", r.Handle)
	}
	for _, n := range r.Ifnames {
		if isLabBridge(plan, n) {
			return fmt.Sprintf("rule handle %d drops on interface %s", r.Handle, n)
		}
	}
	for _, a := range r.Addrs {
		if inLabSubnets(plan, a) {
			return fmt.Sprintf("rule handle %d drops lab address %s", r.Handle, a)
		}
	}
	return ""
}

func nftDropFinding(plan *topology.Plan, c NFTChain, d dropCause) Finding {
	cost := "frames switched between VMs and containers on " + bridgeList(plan) + " are dropped"
	if plan.Routed() && c.Family != "bridge" {
		cost += ", and so is traffic the host routes between them"
	}
	if c.Hook == "input" {
		cost = "DHCP and DNS to the lab dnsmasq on " + gatewayList(plan) + " are dropped"
	}
	return Finding{
		ID:       IDNFTForeignDrop,
		Severity: Error,
		Object:   fmt.Sprintf("nft %s %s %s", c.Family, c.Table, c.Name),
		Evidence: fmt.Sprintf("base chain on hook %s (priority %d): %s", c.Hook, c.Priority, d.why),
		Cost:     cost,
		Fix:      nftFix(plan, c, d),
	}
}

// nftFix lets lab traffic through chain c. In the ip, ip6 and inet
// families accepts on the bridge names go first: on the forward hook one
// per ordered pair of lab bridges (a bridge with itself included), on the
// input hook one per bridge. In the bridge family iifname names the port,
// not the bridge, so the drop itself is removed.
func nftFix(plan *topology.Plan, c NFTChain, d dropCause) string {
	ref := fmt.Sprintf("%s %s %s", c.Family, c.Table, c.Name)
	drop := fmt.Sprintf(" (or remove the table: nft delete table %s %s)", c.Family, c.Table)
	if c.Family == "bridge" {
		if d.handle == 0 {
			return fmt.Sprintf("nft chain %s '{ policy accept; }'", ref) + drop
		}
		return fmt.Sprintf("nft delete rule %s handle %d", ref, d.handle) + drop
	}
	var cmds []string
	for _, in := range plan.Bridges() {
		if c.Hook == "input" {
			cmds = append(cmds, fmt.Sprintf(`nft insert rule %s iifname "%s" accept`, ref, in))
			continue
		}
		for _, out := range plan.Bridges() {
			cmds = append(cmds, fmt.Sprintf(`nft insert rule %s iifname "%s" oifname "%s" accept`,
				ref, in, out))
		}
	}
	return strings.Join(cmds, " && ") + drop
}
