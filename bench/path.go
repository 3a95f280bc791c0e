package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"hybridlab/probes"
	"hybridlab/probes/remote"
)

// Targets are the server addresses (host:port) a path's client aims at.
type Targets struct {
	TCP  string `json:"tcp"`  // TCP echo
	UDP  string `json:"udp"`  // UDP echo
	Sink string `json:"sink"` // TCP discard sink for throughput
}

// For returns the echo address for proto ("tcp" or "udp").
func (t Targets) For(proto string) string {
	if proto == "udp" {
		return t.UDP
	}
	return t.TCP
}

// Client is the measuring end of a path.
type Client interface {
	RR(ctx context.Context, cfg probes.RRConfig) (probes.RRResult, error)
	Tput(ctx context.Context, cfg probes.TputConfig) (probes.TputResult, error)
}

// StartFunc starts (or confirms) the server end of a path and returns the addresses to
// target and a function that stops what it started.
type StartFunc func(ctx context.Context) (Targets, func() error, error)

// Path is one network path measured by Run.
type Path struct {
	Name        string
	Description string
	Start       StartFunc
	Client      Client
	// Tools, when set, lets the fidelity check run sockperf and iperf3 across the same path.
	Tools *ToolEnds
	// Interfaces are the links the path crosses; Run records their MTU and offloads.
	Interfaces []Interface
}

// Interface names a network interface, in a named netns or ("" ) the host's.
type Interface struct {
	Netns string `json:"netns,omitempty"`
	Name  string `json:"name"`
}

// Ports the agent serves on by default (`probe serve` without flags).
const (
	AgentTCPPort  = 7000
	AgentUDPPort  = 7001
	AgentSinkPort = 7002
)

// Starter is a Runner that can keep a probe command running, such as remote.Local and
// remote.Netns.
type Starter interface {
	Start(ctx context.Context, args ...string) (*remote.Process, error)
}

// ErrCannotStart is returned when a path's server runner cannot keep `probe serve` running.
var ErrCannotStart = errors.New("runner cannot start a long-lived probe serve")

// RunnerPath builds a path measured with the probe agent on lab nodes: client runs
// `probe rr` / `probe tput` aimed at targetIP. When server is a Starter (remote.Local,
// remote.Netns), Start runs `probe serve` on ephemeral ports of targetIP and stops it
// afterwards; when server is nil the node is expected to serve already on the agent's
// default ports (the lab image runs `probe serve`). Any other server Runner (Docker exec,
// SSH) cannot hold a process, and Start fails with ErrCannotStart.
func RunnerPath(name string, server, client remote.Runner, targetIP string) Path {
	return Path{
		Name:        name,
		Description: fmt.Sprintf("probe agent to %s", targetIP),
		Start:       runnerStart(server, targetIP),
		Client:      RunnerClient{R: client},
	}
}

func runnerStart(server remote.Runner, ip string) StartFunc {
	return func(ctx context.Context) (Targets, func() error, error) {
		if server == nil {
			return targetsAt(ip, AgentTCPPort, AgentUDPPort, AgentSinkPort), noStop, nil
		}
		st, ok := server.(Starter)
		if !ok {
			return Targets{}, nil, fmt.Errorf("start probe serve for %s: %w", ip, ErrCannotStart)
		}
		return startServe(ctx, st, ip)
	}
}

func noStop() error { return nil }

func targetsAt(ip string, tcp, udp, sink int) Targets {
	hp := func(p int) string { return net.JoinHostPort(ip, strconv.Itoa(p)) }
	return Targets{TCP: hp(tcp), UDP: hp(udp), Sink: hp(sink)}
}

// startServe runs `probe serve` bound to ephemeral ports of ip and reads the bound addresses
// from its ready line.
func startServe(ctx context.Context, st Starter, ip string) (Targets, func() error, error) {
	t := targetsAt(ip, 0, 0, 0)
	p, err := st.Start(ctx, "serve", "--tcp", t.TCP, "--udp", t.UDP, "--sink", t.Sink,
		"--http", "")
	if err != nil {
		return Targets{}, nil, fmt.Errorf("start probe serve on %s: %w", ip, err)
	}
	var addrs probes.ServeAddrs
	if err := json.Unmarshal(p.Ready, &addrs); err != nil {
		_ = p.Stop(2 * time.Second)
		return Targets{}, nil, fmt.Errorf("parse probe serve ready line %q: %w", p.Ready, err)
	}
	return Targets{TCP: addrs.TCP, UDP: addrs.UDP, Sink: addrs.Sink},
		func() error { return p.Stop(2 * time.Second) }, nil
}

// RunnerClient measures with the probe agent through a remote.Runner.
type RunnerClient struct{ R remote.Runner }

// RR runs `probe rr` on the runner's node.
func (c RunnerClient) RR(ctx context.Context, cfg probes.RRConfig) (probes.RRResult, error) {
	return remote.RR(ctx, c.R, cfg)
}

// Tput runs `probe tput` on the runner's node.
func (c RunnerClient) Tput(ctx context.Context, cfg probes.TputConfig) (probes.TputResult,
	error) {
	return remote.Tput(ctx, c.R, cfg)
}
