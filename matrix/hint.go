package matrix

import (
	"fmt"
	"sort"
	"strings"
)

// Hint reads the pattern of failed cells and names the likely cause in one sentence, or
// returns "" when every cell passes. gateway is the name of the host's endpoint ("" when
// the host took no part). The patterns, most specific first:
//
//   - a node fails in every cell, to and from it: the node itself (not running, not on the
//     bridge, wrong address);
//   - ICMP passes where TCP or UDP fail: the agent's echo server on the target;
//   - in a routed lab, every failed cell joins nodes of two different segments and some cell
//     within a segment passes: the host does not route between the lab bridges
//     (net.ipv4.ip_forward off, no DOCKER-USER accept for the pair of bridges, a foreign
//     firewall drop on the forward hook);
//   - the host reaches every node but nodes do not reach each other: frames switched inside
//     the bridge are filtered by the host's IP firewall (br_netfilter with a FORWARD policy of
//     DROP and no accept for the bridge, faults B01/B02).
func (m Matrix) Hint(gateway string) string {
	failed := m.Failed()
	if len(failed) == 0 {
		return ""
	}
	if dead := m.deadNodes(); len(dead) > 0 {
		where := "the lab bridge"
		if m.Segments != nil {
			where = "their segment's bridge"
		}
		return fmt.Sprintf("%s fail in every cell to and from them: check they run, "+
			"hold their planned address and have their port on %s",
			strings.Join(dead, ", "), where)
	}
	if onlyEcho(failed) {
		return "ping passes where TCP or UDP fail: the agent's echo (probe serve on :7000 " +
			"and :7001) is not answering on the targets of those cells"
	}
	if pairs := m.unroutedPairs(failed); len(pairs) > 0 {
		return fmt.Sprintf("nodes reach their own segment but cells between segments fail "+
			"(%s): the host does not route between the lab bridges - net.ipv4.ip_forward is "+
			"off, DOCKER-USER lacks the lab's accept for the pair of bridges, or a firewall "+
			"drops forwarded traffic; `go run ./setup doctor` names which",
			strings.Join(pairs, ", "))
	}
	if gateway != "" && m.hostPasses(gateway) {
		return "the host reaches every node and every node reaches the host, but nodes fail " +
			"to reach each other: frames switched inside the lab bridge are dropped by the " +
			"host's IP firewall (br_netfilter sends them through FORWARD, whose policy drops; " +
			"the lab's DOCKER-USER accept is missing) - faults B01/B02; run setup up again"
	}
	return fmt.Sprintf("%d cells fail without a pattern the matrix knows; read each error",
		len(failed))
}

// unroutedPairs returns the pairs of segments ("main -> edge") of the failed cells when every
// failed cell joins two nodes of different segments and some cell within a segment passes;
// otherwise nil.
func (m Matrix) unroutedPairs(failed []Cell) []string {
	if m.Segments == nil {
		return nil
	}
	seen := map[string]bool{}
	var pairs []string
	for _, c := range failed {
		from, ok1 := m.Segments[c.From]
		to, ok2 := m.Segments[c.To]
		if !ok1 || !ok2 || from == to {
			return nil
		}
		if pair := from + " -> " + to; !seen[pair] {
			seen[pair] = true
			pairs = append(pairs, pair)
		}
	}
	for _, c := range m.Cells {
		from, ok := m.Segments[c.From]
		if ok && from == m.Segments[c.To] && c.OK() {
			sort.Strings(pairs)
			return pairs
		}
	}
	return nil
}

// deadNodes lists nodes whose every cell, as source and as target, fails.
func (m Matrix) deadNodes() []string {
	bad := map[string]int{}
	for _, c := range m.Cells {
		if !c.OK() {
			bad[c.From]++
			bad[c.To]++
		}
	}
	var out []string
	for node, n := range bad {
		if n == 2*(len(m.Nodes)-1) {
			out = append(out, node)
		}
	}
	sort.Strings(out)
	if len(out) == len(m.Nodes) {
		return nil // everything fails: a pattern of the path, not of nodes
	}
	return out
}

func onlyEcho(cells []Cell) bool {
	for _, c := range cells {
		if r, ok := c.Result(ICMP); ok && !r.OK && !r.Skipped {
			return false
		}
	}
	return true
}

func (m Matrix) hostPasses(gateway string) bool {
	seen := false
	for _, c := range m.Cells {
		if c.From == gateway || c.To == gateway {
			seen = true
			if !c.OK() {
				return false
			}
		}
	}
	return seen
}
