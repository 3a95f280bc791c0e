package doctor

import (
	"fmt"
	"slices"
	"strings"

	"hybridlab/topology"
)

// checkMTUMismatch compares each lab bridge's MTU with the plan and with
// each port's MTU. A port with a smaller MTU drops the larger frames
// silently.
func checkMTUMismatch(plan *topology.Plan, s *HostState) []Finding {
	return perSegment(plan, func(v *topology.Plan) []Finding { return mtuOn(v, s) })
}

func mtuOn(plan *topology.Plan, s *HostState) []Finding {
	br, ok := s.Bridge(plan.Bridge.Name)
	if !ok {
		return nil
	}
	var out []Finding
	if br.MTU != plan.Bridge.MTU {
		out = append(out, Finding{
			ID:       IDMTUMismatch,
			Severity: Warn,
			Object:   "bridge " + br.Name,
			Evidence: fmt.Sprintf("bridge MTU %d, plan MTU %d", br.MTU, plan.Bridge.MTU),
			Cost:     "packets sized for the plan's MTU are fragmented or dropped",
			Fix: fmt.Sprintf("ip link set %s mtu %d (or set `mtu: %d` in lab.yaml)", br.Name,
				plan.Bridge.MTU, br.MTU),
		})
	}
	for _, p := range br.Ports {
		if p.MTU == plan.Bridge.MTU {
			continue
		}
		out = append(out, Finding{
			ID:       IDMTUMismatch,
			Severity: Error,
			Object:   fmt.Sprintf("port %s of %s", p.Name, br.Name),
			Evidence: fmt.Sprintf("port MTU %d, bridge MTU %d, plan MTU %d", p.MTU, br.MTU,
				plan.Bridge.MTU),
			Cost: "frames larger than the smaller MTU are dropped without an ICMP error: " +
				"ping works, bulk transfers stall",
			Fix: fmt.Sprintf("ip link set %s mtu %d", p.Name, plan.Bridge.MTU),
		})
	}
	return out
}

// checkSTPDelay finds STP on with a forward delay on the lab bridges: each
// new port then waits twice the delay before it forwards.
func checkSTPDelay(plan *topology.Plan, s *HostState) []Finding {
	var out []Finding
	for _, name := range append(plan.Bridges(), plan.Management.Bridge) {
		br, ok := s.Bridge(name)
		if !ok || br.STP == 0 || br.ForwardDelay == 0 {
			continue
		}
		out = append(out, Finding{
			ID:       IDSTPDelay,
			Severity: Warn,
			Object:   "bridge " + name,
			Evidence: fmt.Sprintf("stp_state %d, forward_delay %d (%.1f s)", br.STP,
				br.ForwardDelay, float64(br.ForwardDelay)/100),
			Cost: fmt.Sprintf("every new VM or container port is blocked for about %.0f s "+
				"(listening + learning): DHCP times out, first tests flake",
				2*float64(br.ForwardDelay)/100),
			// With STP off a port forwards at once, whatever the delay; the
			// kernel refuses a delay under 2 s while STP is still on.
			Fix: fmt.Sprintf("ip link set %s type bridge stp_state 0", name),
		})
	}
	return out
}

// checkBridgeChanged compares the lab bridges with the snapshots recorded by
// `up` (HostState.Baseline and Baselines): Docker has been seen to strip or
// change a bridge it adopts.
func checkBridgeChanged(_ *topology.Plan, s *HostState) []Finding {
	var out []Finding
	for _, was := range s.baselines() {
		out = append(out, bridgeChanged(was, s)...)
	}
	return out
}

func bridgeChanged(was Bridge, s *HostState) []Finding {
	now, ok := s.Bridge(was.Name)
	if !ok {
		return []Finding{{
			ID:       IDBridgeChanged,
			Severity: Error,
			Object:   "bridge " + was.Name,
			Evidence: "the bridge recorded at `up` is gone",
			Cost:     "every VM and container on the lab has lost its network",
			Fix:      "go run ./setup up",
		}}
	}
	diffs, fixes := bridgeDiff(was, now)
	if len(diffs) == 0 {
		return nil
	}
	return []Finding{{
		ID:       IDBridgeChanged,
		Severity: Error,
		Object:   "bridge " + was.Name,
		Evidence: "changed since `up`: " + strings.Join(diffs, "; "),
		Cost:     "VMs lose the gateway, DHCP or DNS; traffic on the bridge may be filtered",
		Fix:      strings.Join(fixes, " && "),
	}}
}

func bridgeDiff(was, now Bridge) (diffs, fixes []string) {
	br := was.Name
	add := func(d, f string) { diffs, fixes = append(diffs, d), append(fixes, f) }
	for _, a := range was.Addrs {
		if !slices.Contains(now.Addrs, a) {
			add("address "+a.String()+" missing", fmt.Sprintf("ip addr add %s dev %s", a, br))
		}
	}
	for _, a := range now.Addrs {
		if !slices.Contains(was.Addrs, a) {
			add("address "+a.String()+" added", fmt.Sprintf("ip addr del %s dev %s", a, br))
		}
	}
	if was.MAC != now.MAC {
		add(fmt.Sprintf("MAC %s -> %s", was.MAC, now.MAC),
			fmt.Sprintf("ip link set %s address %s", br, was.MAC))
	}
	if was.MTU != now.MTU {
		add(fmt.Sprintf("MTU %d -> %d", was.MTU, now.MTU),
			fmt.Sprintf("ip link set %s mtu %d", br, was.MTU))
	}
	// stp_state goes first and alone: while STP is on the kernel refuses a
	// forward delay under 2 s.
	if was.STP != now.STP {
		add(fmt.Sprintf("stp_state %d -> %d", was.STP, now.STP),
			fmt.Sprintf("ip link set %s type bridge stp_state %d", br, was.STP))
	}
	if was.ForwardDelay != now.ForwardDelay {
		add(fmt.Sprintf("forward_delay %d -> %d", was.ForwardDelay, now.ForwardDelay),
			fmt.Sprintf("ip link set %s type bridge forward_delay %d", br, was.ForwardDelay))
	}
	if was.NFCallIptables != now.NFCallIptables {
		add(fmt.Sprintf("nf_call_iptables %d -> %d", was.NFCallIptables, now.NFCallIptables),
			fmt.Sprintf("ip link set %s type bridge nf_call_iptables %d", br,
				was.NFCallIptables))
	}
	return diffs, fixes
}
