package policy

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"hybridlab/topology"
)

// newRoutedTestbed is the lab of routedLab in namespaces hlp-PID-*: the
// host routes between bridges hlpbr0 (10.0.40.0/24) and hlpbr1
// (10.0.41.0/24).
func newRoutedTestbed(t *testing.T) *testbed {
	t.Helper()
	p, _ := routedPlan(t, "")
	tb := buildTestbed(t, p, fmt.Sprintf("hlp-%d-", os.Getpid()), "hlp-")
	t.Cleanup(func() { _ = Remove("hlp") })
	return tb
}

// TestKernelRoutedPolicyMatrix: without a policy every endpoint reaches
// every other across the host's routing; with deny by default only the
// allowed pairs pass, routed and switched alike, and a changed policy
// changes the routed pairs.
func TestKernelRoutedPolicyMatrix(t *testing.T) {
	tb := newRoutedTestbed(t)
	_, none := routedPlan(t, "")
	tb.matrixIs(t, "routed, no policy", tb.expect(t, none))

	p, deny := routedPlan(t, routedPolicy)
	ensure(t, p, deny)
	want := tb.expect(t, deny)
	for _, k := range []string{key(tb.ep("far1"), tb.ep("web"), probeKind{"tcp", 80}),
		key(tb.ep("vm1"), tb.ep("far2"), probeKind{"icmp", 0}),
		key(tb.ep("far2"), tb.ep("db"), probeKind{"udp", 5353})} {
		if !want[k] {
			t.Fatalf("the routed policy should allow %s: test lab broken", k)
		}
	}
	tb.matrixIs(t, "routed, deny by default", want)

	counters := labStatus(t, "hlp")
	for _, name := range []string{"far1-to-web", "main-pings-far", "far-udp-db",
		"vm3-not-web", "far-ping-host", CommentDefault} {
		if counters[name].Packets == 0 {
			t.Errorf("counter %q is zero after the routed matrix: %v", name, counters)
		}
	}

	_, changed := routedPlan(t, routedChanged)
	ensure(t, p, changed)
	after := tb.expect(t, changed)
	if n := differing(want, after); n < 10 {
		t.Fatalf("the changed routed policy changes only %d probes: test broken", n)
	}
	tb.matrixIs(t, "routed, changed policy", after)
}

func differing(a, b matrix) int {
	n := 0
	for k, v := range a {
		if b[k] != v {
			n++
		}
	}
	return n
}

// TestKernelRoutedDropsUnallowed: a routed TCP connection no rule allows
// gets no answer, and the default rule counts it.
func TestKernelRoutedDropsUnallowed(t *testing.T) {
	tb := newRoutedTestbed(t)
	far2, web := tb.ep("far2"), tb.ep("web")
	tcp80 := probeKind{topology.ProtoTCP, 80}
	waitReaches(t, far2, web, tcp80)

	p, deny := routedPlan(t, routedPolicy)
	ensure(t, p, deny)
	before := labStatus(t, "hlp")[CommentDefault].Packets
	if reaches(far2, web, tcp80) {
		t.Fatal("far2 reaches web tcp/80 across the segments although no rule allows it")
	}
	if after := labStatus(t, "hlp")[CommentDefault].Packets; after <= before {
		t.Errorf("builtin:default stayed at %d packets after a denied routed connection", after)
	}
}

// TestKernelRoutedKeepsEstablished: a routed TCP connection that the
// policy allows survives a re-apply of the same policy, and a change that
// no longer allows it (conntrack keeps it), while a new one is dropped.
func TestKernelRoutedKeepsEstablished(t *testing.T) {
	tb := newRoutedTestbed(t)
	p, deny := routedPlan(t, routedPolicy)
	ensure(t, p, deny)

	far1, web := tb.ep("far1"), tb.ep("web")
	addr := netip.AddrPortFrom(web.ip, 80).String()
	conn := waitConn(t, far1.ns, addr)
	defer conn.Close()

	if res := ensure(t, p, deny); !res.Replaced {
		t.Errorf("re-apply = %+v, want Replaced", res)
	}
	if !echoes(conn, "same policy") {
		t.Error("the established routed far1 -> web tcp/80 connection was cut by a re-apply")
	}
	_, changed := routedPlan(t, routedChanged)
	ensure(t, p, changed)
	if !echoes(conn, "changed policy") {
		t.Error("the established routed far1 -> web tcp/80 connection was cut by the change")
	}
	if reaches(far1, web, probeKind{topology.ProtoTCP, 80}) {
		t.Error("a new far1 -> web tcp/80 connection passes after the change denied it")
	}
}

// waitConn opens a TCP connection from ns to addr that echoes, polling
// until matrixTimeout.
func waitConn(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(matrixTimeout)
	for {
		c, err := dial(ns, "tcp4", addr)
		if err == nil && echoes(c, "before") {
			return c
		}
		if c != nil {
			c.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no echoing tcp connection from %s to %s: %v", ns, addr, err)
		}
	}
}

// waitReaches polls until src reaches dst with k, or fails: the setup
// must route before a drop can mean anything.
func waitReaches(t *testing.T, src, dst endpoint, k probeKind) {
	t.Helper()
	deadline := time.Now().Add(matrixTimeout)
	for !reaches(src, dst, k) {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not reach %s %s without a policy: test setup broken",
				src.name, dst.name, k)
		}
	}
}
