package guard

import (
	"fmt"
	"strings"
)

// explain sums up a guard state in one line for a person: what the lab
// table does, and whether bridged lab traffic gets past each family's
// FORWARD chain.
func explain(st State) string {
	parts := []string{tableLine(st)}
	for _, du := range st.DockerUser {
		nfCall := st.NFCallIPTables
		if du.Family == "ip6" {
			nfCall = st.NFCallIP6Tables
		}
		if line := dockerUserLine(du, nfCall); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

func tableLine(st State) string {
	if !st.Present {
		return fmt.Sprintf("table inet %s is missing: lab traffic is not kept on the host "+
			"(run up)", st.Table)
	}
	if st.Enforcing {
		return fmt.Sprintf("table inet %s drops lab traffic leaving through other "+
			"interfaces (%d packets dropped)", st.Table, st.Dropped())
	}
	return fmt.Sprintf("table inet %s only counts lab traffic leaving the host, egress is "+
		"allowed (%d packets left)", st.Table, st.Dropped())
}

func dockerUserLine(du DockerUserStatus, nfCall bool) string {
	filtered := du.ForwardPolicy == "drop" && nfCall
	switch {
	case du.Chain && len(du.Rules) > 0:
		var pkts uint64
		for _, r := range du.Rules {
			pkts += r.Packets
		}
		return fmt.Sprintf("%s filter %s accepts bridged lab traffic (%d packets)",
			du.Family, DockerUserChain, pkts)
	case du.Chain && filtered:
		return fmt.Sprintf("%s filter %s has no lab rule and FORWARD drops: bridged lab "+
			"traffic is dropped (faults B01/B02); run up again", du.Family, DockerUserChain)
	case du.Chain:
		return fmt.Sprintf("%s filter %s has no lab rule (run up again)",
			du.Family, DockerUserChain)
	case filtered:
		return fmt.Sprintf("%s filter FORWARD policy is drop and bridge-nf-call-%stables=1 "+
			"but there is no %s chain: bridged lab traffic is dropped (faults B01/B02); "+
			"start dockerd and run up again", du.Family, du.Family, DockerUserChain)
	case du.Family == "ip":
		return fmt.Sprintf("ip filter has no %s chain (dockerd not running): nothing added, "+
			"none needed while FORWARD accepts", DockerUserChain)
	}
	return ""
}
