package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hybridlab/probes"
	"hybridlab/probes/remote"
	"hybridlab/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeNet answers ping and rr for fake agents: every pair works unless listed in down
// ("from>to/proto").
type fakeNet struct {
	down     map[string]bool
	flaky    map[string]bool // connect works, rr loses or refuses
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	mu       sync.Mutex
	calls    []string
}

type fakeAgent struct {
	name string
	net  *fakeNet
}

func (f fakeAgent) enter(call string) func() {
	n := f.net.inFlight.Add(1)
	for {
		m := f.net.maxSeen.Load()
		if n <= m || f.net.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	f.net.mu.Lock()
	f.net.calls = append(f.net.calls, call)
	f.net.mu.Unlock()
	time.Sleep(time.Millisecond) // lets concurrent probes overlap
	return func() { f.net.inFlight.Add(-1) }
}

func (f fakeAgent) Exec(_ context.Context, argv ...string) ([]byte, error) {
	ip := argv[len(argv)-1]
	defer f.enter(f.name + " " + strings.Join(argv, " "))()
	if f.net.down[f.name+">"+ip+"/icmp"] {
		out := "PING x\n\n--- x ping statistics ---\n1 packets transmitted, 0 packets received, " +
			"100% packet loss\n"
		return []byte(out), &remote.ExitError{Where: f.name, Args: argv, Code: 1}
	}
	out := "PING x\n--- x ping statistics ---\n1 packets transmitted, 1 packets received, " +
		"0% packet loss\nround-trip min/avg/max = 0.100/0.100/0.100 ms\n"
	return []byte(out), nil
}

func (f fakeAgent) Run(_ context.Context, args ...string) ([]byte, error) {
	defer f.enter(f.name + " " + strings.Join(args, " "))()
	target, proto := flagValue(args, "--target"), flagValue(args, "--proto")
	ip, _, _ := strings.Cut(target, ":")
	down := f.net.down[f.name+">"+ip+"/"+proto]
	if args[0] == "connect" {
		res := probes.ConnectResult{Target: target, Proto: proto, OK: !down}
		if down && proto == "tcp" {
			res.Kind, res.Error = probes.KindRefused, "connection refused"
		}
		return json.Marshal(res)
	}
	if f.net.flaky[f.name+">"+ip+"/"+proto] {
		if proto == "tcp" {
			return nil, &remote.ExitError{Where: f.name, Args: args, Code: 1,
				Stderr: "rr " + target + ": dial tcp " + target + ": connect: connection refused"}
		}
		res := probes.RRResult{Target: target, Proto: proto, Count: 20, OK: 0, Errors: 20,
			ErrorKinds: map[probes.ErrorKind]int64{probes.KindTimeout: 20}}
		return json.Marshal(res)
	}
	res := probes.RRResult{Target: target, Proto: proto, Count: 20, OK: 20}
	res.P50Us = 40
	if proto == "udp" {
		res.P50Us = 35
	}
	return json.Marshal(res)
}

func flagValue(args []string, name string) string {
	for i := range args[:len(args)-1] {
		if args[i] == name {
			return args[i+1]
		}
	}
	return ""
}

func testPlan(t *testing.T) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(`name: mt
bridge: br-mt
subnet: 10.0.50.0/24
management: {subnet: 10.0.51.0/24}
vms: [{name: vm1}]
containers: [{name: c1}, {name: c2}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func endpoints(p *topology.Plan, n *fakeNet) []Endpoint {
	var eps []Endpoint
	for _, node := range p.Nodes {
		eps = append(eps, Endpoint{Name: node.Name, Kind: node.Kind, IP: node.IP, Echo: true,
			Agent: fakeAgent{name: node.Name, net: n}})
	}
	return append(eps, Endpoint{Name: GatewayName, Kind: KindHost, IP: p.Gateway,
		Agent: fakeAgent{name: GatewayName, net: n}})
}

func TestRunFillsEveryCell(t *testing.T) {
	p := testPlan(t)
	n := &fakeNet{down: map[string]bool{
		"vm1>10.0.50.254/icmp": true, // vm1 -> c1
		"c2>10.0.50.10/tcp":    true, // c2 -> vm1
	}, flaky: map[string]bool{
		"c1>10.0.50.253/udp": true, // c1 -> c2
		"vm1>10.0.50.1/tcp":  true, // vm1 -> gateway: skipped, no echo there
	}}
	m, err := Run(context.Background(), p, Options{Endpoints: endpoints(p, n), Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 4*3 {
		t.Fatalf("got %d cells, want 12", len(m.Cells))
	}
	if got := n.maxSeen.Load(); got > 3 {
		t.Errorf("saw %d probes in flight, want at most 3", got)
	}
	var failed []string
	for _, c := range m.Failed() {
		failed = append(failed, c.From+">"+c.To)
	}
	if want := "vm1>c1 c1>c2 c2>vm1"; strings.Join(failed, " ") != want {
		t.Errorf("failed cells %q, want %q", failed, want)
	}
	gw, _ := m.Cell("c1", GatewayName)
	if r, _ := gw.Result(TCP); !r.Skipped || r.OK {
		t.Errorf("tcp to a gateway without echo: got %+v, want skipped", r)
	}
	if !gw.OK() {
		t.Errorf("cell c1 -> gateway with only ICMP run should pass: %+v", gw)
	}
	m.Seconds, m.Start = 1.5, time.Time{}
	golden(t, "matrix.txt", m.String())
}

func TestRunBoundsConcurrencyByDefault(t *testing.T) {
	p := testPlan(t)
	n := &fakeNet{}
	if _, err := Run(context.Background(), p, Options{Endpoints: endpoints(p, n)}); err != nil {
		t.Fatal(err)
	}
	if got := n.maxSeen.Load(); got != 2 {
		t.Errorf("saw %d probes in flight, want 2 (the default)", got)
	}
	if len(n.calls) != 12+2*(9*2) {
		t.Errorf("got %d probe calls, want 48 (12 pings, connect+rr for 18 tcp/udp cells)",
			len(n.calls))
	}
}

func TestRunRejectsBadEndpoints(t *testing.T) {
	p := testPlan(t)
	a := fakeAgent{net: &fakeNet{}}
	ip := netip.MustParseAddr("10.0.50.2")
	for _, tc := range []struct {
		name string
		eps  []Endpoint
		want string
	}{
		{"one", []Endpoint{{Name: "a", IP: ip, Agent: a}}, ErrTooFewEndpoints.Error()},
		{"twice", []Endpoint{{Name: "a", IP: ip, Agent: a}, {Name: "a", IP: ip, Agent: a}},
			`endpoint "a": listed twice`},
		{"no runner", []Endpoint{{Name: "a", IP: ip, Agent: a}, {Name: "b", IP: ip}},
			`endpoint "b": no runner`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), p, Options{Endpoints: tc.eps})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	p := testPlan(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, p, Options{Endpoints: endpoints(p, &fakeNet{})})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestFromPlan(t *testing.T) {
	p := testPlan(t)
	eps := FromPlan(p, EndpointOptions{Docker: nilExecAPI{}, VMs: true, HostAgent: "/bin/probe"})
	var names []string
	for _, e := range eps {
		names = append(names, fmt.Sprintf("%s/%s/%s/%v", e.Name, e.Kind, e.IP, e.Serve != nil))
	}
	want := "vm1/vm/10.0.50.10/false c1/container/10.0.50.254/false " +
		"c2/container/10.0.50.253/false gateway/host/10.0.50.1/true"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if err := Close(eps); err != nil {
		t.Errorf("close endpoints that never connected: %v", err)
	}
	if got := len(FromPlan(p, EndpointOptions{})); got != 0 {
		t.Errorf("no sources selected: got %d endpoints", got)
	}
}

func TestWriteJSONRoundTrips(t *testing.T) {
	p := testPlan(t)
	m, err := Run(context.Background(), p, Options{Endpoints: endpoints(p, &fakeNet{})})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Matrix
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Cells) != len(m.Cells) || back.Cells[0].Results[1].P50Us != 40 {
		t.Errorf("round trip lost data: %+v", back.Cells[0])
	}
}

type nilExecAPI struct{ remote.ExecAPI }

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func TestHintNamesTheCause(t *testing.T) {
	p := testPlan(t)
	gw := p.Gateway.String()
	for _, tc := range []struct {
		name string
		down []string
		want string
	}{
		{"all pass", nil, ""},
		{"bridged frames filtered", []string{
			"vm1>10.0.50.254/icmp", "vm1>10.0.50.253/icmp", "c1>10.0.50.10/icmp",
			"c1>10.0.50.253/icmp", "c2>10.0.50.10/icmp", "c2>10.0.50.254/icmp"},
			"B01/B02"},
		{"dead node", []string{
			"vm1>10.0.50.254/icmp", "c2>10.0.50.254/icmp", "gateway>10.0.50.254/icmp",
			"c1>10.0.50.10/icmp", "c1>10.0.50.253/icmp", "c1>" + gw + "/icmp"},
			"c1 fail in every cell"},
		{"echo down", []string{"vm1>10.0.50.254/tcp", "c2>10.0.50.254/udp"},
			"probe serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNet{down: map[string]bool{}}
			for _, d := range tc.down {
				n.down[d] = true
			}
			m, err := Run(context.Background(), p, Options{Endpoints: endpoints(p, n)})
			if err != nil {
				t.Fatal(err)
			}
			got := m.Hint(GatewayName)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("hint %q, want one containing %q\n%s", got, tc.want, m)
			}
		})
	}
}

// routedPlan has segment main (10.0.50.0/24) with vm1 and c1, and segment edge
// (10.0.52.0/24) with e1.
func routedPlan(t *testing.T) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(`name: mt
bridge: br-mt
subnet: 10.0.50.0/24
management: {subnet: 10.0.51.0/24}
segments: [{name: edge, bridge: br-mt-edge, subnet: 10.0.52.0/24}]
vms: [{name: vm1}]
containers: [{name: c1}, {name: e1, segment: edge}]
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGatewayAnswersOnEverySegment(t *testing.T) {
	p := routedPlan(t)
	gw := Gateway(p, "/bin/probe")
	if gw.IP.String() != "10.0.50.1" || len(gw.Addrs) != 1 || gw.Addrs[0].String() != "10.0.52.1" {
		t.Fatalf("gateway endpoint at %s + %v, want 10.0.50.1 + [10.0.52.1]", gw.IP, gw.Addrs)
	}
	single := Gateway(testPlan(t), "/bin/probe")
	if len(single.Addrs) != 0 {
		t.Fatalf("one-segment gateway has more addresses: %v", single.Addrs)
	}
}

func TestRoutedTargetsAndServers(t *testing.T) {
	p := routedPlan(t)
	n := &fakeNet{}
	eps := endpoints(p, n)
	host := Gateway(p, "/bin/probe")
	starter := &fakeStarter{}
	host.Agent, host.Serve = fakeAgent{name: GatewayName, net: n}, starter
	eps[len(eps)-1] = host
	m, err := Run(context.Background(), p, Options{Endpoints: eps})
	if err != nil {
		t.Fatal(err)
	}
	for from, want := range map[string]string{"vm1": "10.0.50.1", "c1": "10.0.50.1",
		"e1": "10.0.52.1"} {
		c, ok := m.Cell(from, GatewayName)
		if !ok || c.Target != want {
			t.Errorf("%s targets the host at %q, want %s", from, c.Target, want)
		}
	}
	if c, _ := m.Cell(GatewayName, "e1"); c.Target != "10.0.52.254" {
		t.Errorf("host targets e1 at %q", c.Target)
	}
	want := "10.0.50.1:7000 10.0.52.1:7000"
	if got := strings.Join(starter.tcp, " "); got != want {
		t.Errorf("echo servers on %s, want %s", got, want)
	}
	if m.Segments["e1"] != "edge" || m.Segments["c1"] != "main" || m.Segments[GatewayName] != "" {
		t.Errorf("segments %v", m.Segments)
	}
	var pinged []string
	for _, call := range n.calls {
		if strings.HasPrefix(call, "e1 ping") {
			pinged = append(pinged, call[strings.LastIndex(call, " ")+1:])
		}
	}
	if !slices.Contains(pinged, "10.0.52.1") || slices.Contains(pinged, "10.0.50.1") {
		t.Errorf("e1 pinged %v; want the host on 10.0.52.1 only", pinged)
	}
}

func TestHintNamesUnroutedSegments(t *testing.T) {
	p := routedPlan(t)
	n := &fakeNet{down: map[string]bool{}}
	for _, d := range []string{"vm1>10.0.52.254", "c1>10.0.52.254", "e1>10.0.50.10",
		"e1>10.0.50.254"} {
		for _, proto := range []string{"icmp", "tcp", "udp"} {
			n.down[d+"/"+proto] = true
		}
	}
	m, err := Run(context.Background(), p, Options{Endpoints: endpoints(p, n)})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Hint(GatewayName)
	if !strings.Contains(got, "(edge -> main, main -> edge)") ||
		!strings.Contains(got, "does not route between the lab bridges") {
		t.Errorf("hint %q\n%s", got, m)
	}
}

// fakeStarter records the echo servers Run starts; each is an echo(1) that prints its
// arguments as the ready line and exits.
type fakeStarter struct{ tcp []string }

func (f *fakeStarter) Start(ctx context.Context, args ...string) (*remote.Process, error) {
	f.tcp = append(f.tcp, flagValue(args, "--tcp"))
	return remote.Local{Path: "echo"}.Start(ctx, args...)
}
