// Package matrix measures the lab's connectivity matrix: from every endpoint (a container, a
// VM, the host on the lab gateway) to every other one, ICMP echo (`ping`), a TCP
// request-response run against the agent's echo on :7000 (`probe rr --proto tcp`) and a UDP one
// against :7001 (`probe rr --proto udp`). Each probe runs on the source node through its
// remote runner, so the path measured is the lab's own: veth or tap, the lab bridge, and the
// host's firewall when br_netfilter sends bridged frames through it.
//
// Run sends traffic only to the endpoints it is given, all of them on the lab's bridges. In a
// routed lab a cell between segments measures the host's routing as well; a node targets the
// host on its own segment's gateway.
package matrix

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"hybridlab/probes"
	"hybridlab/probes/remote"
	"hybridlab/topology"
)

// Ports of `probe serve` that the matrix targets.
const (
	EchoTCPPort = 7000
	EchoUDPPort = 7001
)

// Proto is one kind of probe in a cell.
type Proto string

// Protocols, in the order cells print them.
const (
	ICMP Proto = "icmp"
	TCP  Proto = "tcp"
	UDP  Proto = "udp"
)

// AllProtos is the default set: ICMP, TCP and UDP.
var AllProtos = []Proto{ICMP, TCP, UDP}

// Options shape Run. Zero fields take the defaults named.
type Options struct {
	// Endpoints take part both as sources and as targets; at least two.
	Endpoints []Endpoint
	// Protos selects the probes per cell (default AllProtos).
	Protos []Proto
	// Count is the number of requests of each rr run (default 20). Each ping attempt sends
	// one echo request.
	Count int
	// Parallel bounds the probes in flight at once (default 2: one per core of a small host).
	Parallel int
	// Timeout bounds one request (rr) or one echo reply (ping) (default 1s).
	Timeout time.Duration
	// PingAttempts is how many single pings are tried before ICMP counts as failed
	// (default 2): the first echo of a fresh pair may wait on ARP.
	PingAttempts int
}

func (o Options) withDefaults() Options {
	if len(o.Protos) == 0 {
		o.Protos = AllProtos
	}
	if o.Count <= 0 {
		o.Count = 20
	}
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.PingAttempts <= 0 {
		o.PingAttempts = 2
	}
	return o
}

// Result is the outcome of one probe of one cell.
type Result struct {
	Proto Proto `json:"proto"`
	OK    bool  `json:"ok"`
	// Skipped is set when the probe did not run; Err then says why.
	Skipped bool `json:"skipped,omitempty"`
	// P50Us is the median round trip in µs (ICMP: the mean of the echoes that returned).
	P50Us float64 `json:"p50_us,omitempty"`
	// Sent and Received count requests of the probe.
	Sent     int64  `json:"sent"`
	Received int64  `json:"received"`
	Err      string `json:"error,omitempty"`
}

// Cell is every probe from one endpoint to another.
type Cell struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Target  string   `json:"target"` // the address probed
	Results []Result `json:"results"`
}

// Result returns the cell's result for proto.
func (c Cell) Result(proto Proto) (Result, bool) {
	for _, r := range c.Results {
		if r.Proto == proto {
			return r, true
		}
	}
	return Result{}, false
}

// OK reports whether every probe of the cell that ran succeeded.
func (c Cell) OK() bool {
	for _, r := range c.Results {
		if !r.OK && !r.Skipped {
			return false
		}
	}
	return true
}

// P50Us is the cell's headline latency: TCP's median, else UDP's, else ICMP's.
func (c Cell) P50Us() float64 {
	for _, p := range []Proto{TCP, UDP, ICMP} {
		if r, ok := c.Result(p); ok && r.OK && r.P50Us > 0 {
			return r.P50Us
		}
	}
	return 0
}

// Matrix is the outcome of Run.
type Matrix struct {
	Lab string `json:"lab"`
	// Nodes are the endpoint names in row and column order.
	Nodes  []string `json:"nodes"`
	Protos []Proto  `json:"protos"`
	Count  int      `json:"count"`
	Cells  []Cell   `json:"cells"`
	// Segments maps each endpoint on one segment of a routed lab to that segment's name;
	// endpoints on every segment (the host) are absent. Nil when the lab has one segment.
	Segments map[string]string `json:"segments,omitempty"`
	Start    time.Time         `json:"start"`
	// Seconds is the wall time of the whole run.
	Seconds float64 `json:"seconds"`
}

// Cell returns the cell from → to.
func (m Matrix) Cell(from, to string) (Cell, bool) {
	for _, c := range m.Cells {
		if c.From == from && c.To == to {
			return c, true
		}
	}
	return Cell{}, false
}

// Failed lists the cells with at least one failed probe, in row order.
func (m Matrix) Failed() []Cell {
	var out []Cell
	for _, c := range m.Cells {
		if !c.OK() {
			out = append(out, c)
		}
	}
	return out
}

// remoteMargin is added to a probe's own bound for the trip to its node: an SSH session to
// a slow (TCG) VM or a docker exec.
const remoteMargin = 15 * time.Second

// ErrTooFewEndpoints is returned by Run when there is no pair to probe.
var ErrTooFewEndpoints = errors.New("a matrix needs at least two endpoints")

// Run probes every ordered pair of distinct endpoints with every protocol of opts, at most
// opts.Parallel probes at a time, and returns the filled matrix. A TCP or UDP probe starts
// with one `probe connect`, so an unreachable target costs one timeout, not Count of them.
// Endpoints with Serve set get a `probe serve` for the run's duration (bound to their lab
// addresses only). A probe that fails is a failed cell, not an error; Run returns an error for
// bad options, a serve that cannot start, or when ctx ends.
func Run(ctx context.Context, p *topology.Plan, opts Options) (Matrix, error) {
	o := opts.withDefaults()
	if len(o.Endpoints) < 2 {
		return Matrix{}, ErrTooFewEndpoints
	}
	if err := checkEndpoints(o.Endpoints); err != nil {
		return Matrix{}, err
	}
	stop, err := startServers(ctx, o.Endpoints)
	if err != nil {
		return Matrix{}, err
	}
	defer stop()

	m := newMatrix(p, o)
	if err := m.probeAll(ctx, o); err != nil {
		return m, err
	}
	m.Seconds = time.Since(m.Start).Seconds()
	return m, nil
}

func checkEndpoints(eps []Endpoint) error {
	seen := map[string]bool{}
	for _, e := range eps {
		switch {
		case e.Name == "":
			return fmt.Errorf("endpoint %s: no name", e.IP)
		case seen[e.Name]:
			return fmt.Errorf("endpoint %q: listed twice", e.Name)
		case !e.IP.IsValid():
			return fmt.Errorf("endpoint %q: no address", e.Name)
		case e.Agent == nil:
			return fmt.Errorf("endpoint %q: no runner", e.Name)
		}
		seen[e.Name] = true
	}
	return nil
}

func newMatrix(p *topology.Plan, o Options) Matrix {
	m := Matrix{Protos: o.Protos, Count: o.Count, Start: time.Now()}
	if p != nil {
		m.Lab = p.Lab
	}
	for _, from := range o.Endpoints {
		m.Nodes = append(m.Nodes, from.Name)
		m.placeOnSegment(p, from)
		for _, to := range o.Endpoints {
			if from.Name == to.Name {
				continue
			}
			c := Cell{From: from.Name, To: to.Name, Target: to.TargetFrom(p, from).String()}
			for _, pr := range o.Protos {
				c.Results = append(c.Results, Result{Proto: pr})
			}
			m.Cells = append(m.Cells, c)
		}
	}
	return m
}

// placeOnSegment records the segment of e when the lab is routed and all of e's addresses
// are on one segment.
func (m *Matrix) placeOnSegment(p *topology.Plan, e Endpoint) {
	if p == nil || !p.Routed() {
		return
	}
	name := ""
	for _, a := range e.addrs() {
		seg, ok := p.SegmentContaining(a)
		if !ok || (name != "" && seg.Name != name) {
			return
		}
		name = seg.Name
	}
	if m.Segments == nil {
		m.Segments = map[string]string{}
	}
	m.Segments[e.Name] = name
}

// probeAll fills every result of m, each probe a job of a bounded group.
func (m *Matrix) probeAll(ctx context.Context, o Options) error {
	byName := map[string]Endpoint{}
	for _, e := range o.Endpoints {
		byName[e.Name] = e
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Parallel)
	for ci := range m.Cells {
		for ri := range m.Cells[ci].Results {
			from, to := byName[m.Cells[ci].From], byName[m.Cells[ci].To]
			to.IP = netip.MustParseAddr(m.Cells[ci].Target)
			proto := m.Cells[ci].Results[ri].Proto
			g.Go(func() error {
				res := probe(gctx, from, to, proto, o)
				mu.Lock()
				m.Cells[ci].Results[ri] = res
				mu.Unlock()
				return gctx.Err()
			})
		}
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("connectivity matrix of lab %q: %w", m.Lab, err)
	}
	return nil
}

// probe runs one protocol's probe from → to.
func probe(ctx context.Context, from, to Endpoint, proto Proto, o Options) Result {
	if proto != ICMP && !to.Echo {
		return Result{Proto: proto, Skipped: true, Err: to.Name + " runs no echo server"}
	}
	switch proto {
	case ICMP:
		return ping(ctx, from, to, o)
	case TCP:
		return rr(ctx, from, to, "tcp", EchoTCPPort, o)
	case UDP:
		return rr(ctx, from, to, "udp", EchoUDPPort, o)
	}
	return Result{Proto: proto, Err: fmt.Sprintf("unknown protocol %q", proto)}
}

func ping(ctx context.Context, from, to Endpoint, o Options) Result {
	res := Result{Proto: ICMP}
	var last error
	for range o.PingAttempts {
		pctx, cancel := context.WithTimeout(ctx, o.Timeout+remoteMargin)
		pr, err := remote.Ping(pctx, from.Agent, to.IP.String(), 1)
		cancel()
		res.Sent += int64(pr.Transmitted)
		res.Received += int64(pr.Received)
		if err == nil && pr.Received > 0 {
			res.OK, res.P50Us, res.Err = true, pr.AvgMs*1000, ""
			return res
		}
		last = err
		if err == nil {
			last = fmt.Errorf("ping %s from %s: no echo reply", to.IP, from.Name)
		}
		if ctx.Err() != nil {
			break
		}
	}
	res.Err = last.Error()
	return res
}

func rr(ctx context.Context, from, to Endpoint, proto string, port int, o Options) Result {
	res := Result{Proto: Proto(proto)}
	target := net.JoinHostPort(to.IP.String(), strconv.Itoa(port))
	// One connect first: an unreachable target then costs one timeout, not Count of them.
	if err := reachable(ctx, from, target, proto, o.Timeout); err != nil {
		res.Err = err.Error()
		return res
	}
	rctx, cancel := context.WithTimeout(ctx, time.Duration(o.Count+1)*o.Timeout+remoteMargin)
	defer cancel()
	out, err := remote.RR(rctx, from.Agent, probes.RRConfig{Target: target, Proto: proto,
		Count: o.Count, Timeout: o.Timeout})
	res.Sent, res.Received, res.P50Us = out.Count, out.OK, out.P50Us
	switch {
	case err != nil:
		res.Err = fmt.Sprintf("%s rr %s from %s: %v", proto, target, from.Name, err)
	case out.OK < out.Count || out.Count == 0:
		res.Err = fmt.Sprintf("%s rr %s from %s: %d of %d requests answered (%v)", proto,
			target, from.Name, out.OK, out.Count, out.ErrorKinds)
	default:
		res.OK = true
	}
	return res
}

// reachable runs `probe connect` from → target once.
func reachable(ctx context.Context, from Endpoint, target, proto string, timeout time.Duration,
) error {
	cctx, cancel := context.WithTimeout(ctx, timeout+remoteMargin)
	defer cancel()
	res, err := remote.Connect(cctx, from.Agent, probes.ConnectConfig{Target: target,
		Proto: proto, Timeout: timeout})
	switch {
	case err != nil:
		return fmt.Errorf("%s connect %s from %s: %w", proto, target, from.Name, err)
	case !res.OK:
		return fmt.Errorf("%s connect %s from %s: %s (%s)", proto, target, from.Name,
			res.Kind, res.Error)
	}
	return nil
}

// startServers starts `probe serve` on every endpoint that asks for it and returns the
// function that stops them all.
func startServers(ctx context.Context, eps []Endpoint) (func(), error) {
	var procs []*remote.Process
	stop := func() {
		for _, p := range procs {
			_ = p.Stop(2 * time.Second)
		}
	}
	for _, e := range eps {
		if e.Serve == nil {
			continue
		}
		for _, ip := range e.addrs() {
			p, err := e.Serve.Start(ctx, serveArgs(ip)...)
			if err != nil {
				stop()
				return nil, fmt.Errorf("start echo server on %s (%s): %w", e.Name, ip, err)
			}
			procs = append(procs, p)
		}
	}
	return stop, nil
}

func serveArgs(ip netip.Addr) []string {
	hp := func(port int) string { return net.JoinHostPort(ip.String(), strconv.Itoa(port)) }
	return []string{"serve", "--tcp", hp(EchoTCPPort), "--udp", hp(EchoUDPPort),
		"--sink", "", "--http", ""}
}
