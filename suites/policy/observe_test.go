package policy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"hybridlab/matrix"
	"hybridlab/probes"
	"hybridlab/probes/remote"
	"hybridlab/suites/labctl"
	"hybridlab/topology"
)

// endpoint is a target the suite also probes from, through the node's own runner.
type endpoint struct {
	target
	node  topology.Node // zero for the host
	agent matrix.Agent
	// ping is the ping command on the endpoint: the host has busybox, not iputils.
	ping []string
}

// observation is what one probe saw, with the probe's own words for anything but a pass.
type observation struct {
	outcome outcome
	detail  string
}

// observed is the outcome of every probe of one matrix run.
type observed map[probeKey]observation

// Bounds of the probes in flight: most of them wait out a drop's Silence. One source runs
// few at once: a VM's sshd opens at most 10 sessions on a connection, and a TCG guest is slow
// to start each.
const (
	parallelProbes    = 8
	parallelPerSource = 3
)

// observe sends every service between every ordered pair of distinct endpoints once and
// records what came back. It returns after the slowest probe, at most a few Silences.
func observe(ctx context.Context, eps []endpoint) observed {
	byName := map[string]endpoint{}
	slots := map[string]chan struct{}{}
	for _, e := range eps {
		byName[e.name] = e
		slots[e.name] = make(chan struct{}, parallelPerSource)
	}
	out := observed{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelProbes)
	for _, k := range spread(probeOrder(eps)) {
		g.Go(func() error {
			slots[k.from] <- struct{}{}
			defer func() { <-slots[k.from] }()
			obs := probeOnce(gctx, byName[k.from], byName[k.to].target, k.svc)
			mu.Lock()
			out[k] = obs
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// spread reorders probes so that neighbours have different sources: the probes in flight
// then share the sources' slots instead of queueing on one.
func spread(keys []probeKey) []probeKey {
	bySource := map[string][]probeKey{}
	var sources []string
	for _, k := range keys {
		if _, seen := bySource[k.from]; !seen {
			sources = append(sources, k.from)
		}
		bySource[k.from] = append(bySource[k.from], k)
	}
	var out []probeKey
	for i := 0; len(out) < len(keys); i++ {
		for _, src := range sources {
			if i < len(bySource[src]) {
				out = append(out, bySource[src][i])
			}
		}
	}
	return out
}

// probeOnce sends svc's traffic from → to once.
func probeOnce(ctx context.Context, from endpoint, to target, svc service) observation {
	// The margin covers a docker exec or an SSH round trip on a loaded host.
	ctx, cancel := context.WithTimeout(ctx, labctl.Silence+labctl.Command)
	defer cancel()
	if svc.proto == topology.ProtoICMP {
		return pingOnce(ctx, from, to)
	}
	addr := net.JoinHostPort(to.ip.String(), strconv.Itoa(svc.port))
	res, err := remote.Connect(ctx, from.agent, probes.ConnectConfig{Target: addr,
		Proto: svc.proto, Timeout: labctl.Silence})
	switch {
	case err != nil:
		return observation{broken, err.Error()}
	case res.OK:
		return observation{pass, "answered"}
	}
	detail := fmt.Sprintf("%s (%s)", res.Error, res.Kind)
	switch res.Kind {
	case probes.KindTimeout:
		return observation{drop, detail}
	case probes.KindRefused, probes.KindUnreachable:
		return observation{reject, detail}
	}
	return observation{broken, detail}
}

// pingOnce sends one ICMP echo request. ping exits 1 without a reply, whether the request
// was dropped, rejected, or (from the host) refused by the output hook.
func pingOnce(ctx context.Context, from endpoint, to target) observation {
	wait := strconv.Itoa(int(labctl.Silence / time.Second))
	argv := append(append([]string(nil), from.ping...), "-c", "1", "-W", wait, to.ip.String())
	out, err := from.agent.Exec(ctx, argv...)
	var ee *remote.ExitError
	switch {
	case err == nil:
		return observation{pass, "answered"}
	case errors.As(err, &ee) && ee.Code == 1:
		return observation{drop, lastLine(string(out) + ee.Stderr)}
	}
	return observation{broken, err.Error()}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// mismatches lists the probes whose observation differs from the prediction, in row order.
func mismatches(eps []endpoint, want prediction, got observed) []probeKey {
	var out []probeKey
	for _, k := range probeOrder(eps) {
		if want[k].outcome != got[k].outcome {
			out = append(out, k)
		}
	}
	return out
}

// leaks lists the probes that passed where the policy drops or rejects.
func leaks(eps []endpoint, want prediction, got observed) []probeKey {
	var out []probeKey
	for _, k := range probeOrder(eps) {
		if want[k].outcome != pass && got[k].outcome == pass {
			out = append(out, k)
		}
	}
	return out
}

// probeOrder is every probe among eps: rows in endpoint order, then columns, then services.
func probeOrder(eps []endpoint) []probeKey {
	var out []probeKey
	for _, from := range eps {
		for _, to := range eps {
			if from.name == to.name || (from.host && to.host) {
				continue
			}
			for _, svc := range services {
				out = append(out, probeKey{from.name, to.name, svc})
			}
		}
	}
	return out
}

// cellMarks are the one-letter marks of outcomes in a printed matrix.
var cellMarks = map[outcome]string{pass: "+", drop: ".", reject: "R", broken: "!"}

// legend explains a printed matrix.
const legend = "row = from, column = to; each cell is tcp/7000 udp/7001 icmp:\n" +
	"  + answered   . dropped (silence)   R rejected (reset or ICMP error)   ! probe failed" +
	"   * differs\n"

// sideBySide prints the expected and the observed matrix next to each other, marks the
// cells that differ, and lists each differing probe with the rule that decides it and what
// the probe saw.
func sideBySide(eps []endpoint, want prediction, got observed) string {
	var b strings.Builder
	b.WriteString(legend)
	width := 7
	for _, e := range eps {
		width = max(width, len(e.name)+2)
	}
	pad := func(s string) string { return fmt.Sprintf("%-*s", width, s) }
	header := pad("")
	for _, e := range eps {
		header += pad(e.name)
	}
	fmt.Fprintf(&b, "%-*s | %s\n", len(header), "expected", "observed")
	fmt.Fprintf(&b, "%s | %s\n", header, header)
	for _, from := range eps {
		left, right := pad(from.name), pad(from.name)
		for _, to := range eps {
			if from.name == to.name || (from.host && to.host) {
				left, right = left+pad("-"), right+pad("-")
				continue
			}
			w, g, differs := cellText(from.name, to.name, want, got)
			if differs {
				g += "*"
			}
			left, right = left+pad(w), right+pad(g)
		}
		fmt.Fprintf(&b, "%s | %s\n", left, right)
	}
	for _, k := range mismatches(eps, want, got) {
		fmt.Fprintf(&b, "  %s: expected %s (%s), observed %s: %s\n", k, want[k].outcome,
			want[k].rule, got[k].outcome, got[k].detail)
	}
	return b.String()
}

func cellText(from, to string, want prediction, got observed) (string, string, bool) {
	var w, g string
	differs := false
	for _, svc := range services {
		k := probeKey{from, to, svc}
		w += cellMarks[want[k].outcome]
		g += orMark(got[k].outcome)
		differs = differs || want[k].outcome != got[k].outcome
	}
	return w, g, differs
}

func orMark(o outcome) string {
	if m, ok := cellMarks[o]; ok {
		return m
	}
	return "?"
}
