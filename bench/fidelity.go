package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Fidelity targets: the probe's p50 may exceed sockperf's by 15 %, its p99 by 50 %.
const (
	FidelityP50Target = 1.15
	FidelityP99Target = 1.5
)

// Default ports of the reference tools on a path's server end (ToolEnds.Ports zero).
const (
	SockperfUDPPort = 17101
	SockperfTCPPort = 17102
	Iperf3Port      = 17103
)

// ToolPorts are the ports the reference tools' servers listen on.
type ToolPorts struct {
	SockperfUDP, SockperfTCP, Iperf3 int
}

func (p ToolPorts) orDefaults() ToolPorts {
	setDefault(&p.SockperfUDP, SockperfUDPPort)
	setDefault(&p.SockperfTCP, SockperfTCPPort)
	setDefault(&p.Iperf3, Iperf3Port)
	return p
}

// sockperfMinSize is the smallest message sockperf sends.
const sockperfMinSize = 14

// ToolEnds are the two ends of a path for the reference tools: sockperf and iperf3 run as
// commands on the Server and Client nodes, the client aiming at Addr (an IP of the server
// end). Both tools must be installed on both nodes, and `ss` on the server node.
type ToolEnds struct {
	Server Node
	Client Node
	Addr   string
	Ports  ToolPorts // zero fields take the default ports
}

// SockperfResult is the round-trip summary of one `sockperf ping-pong --full-rtt` run, in µs.
type SockperfResult struct {
	Samples int64   `json:"samples"`
	MinUs   float64 `json:"min_us"`
	P50Us   float64 `json:"p50_us"`
	P90Us   float64 `json:"p90_us"`
	P99Us   float64 `json:"p99_us"`
	P999Us  float64 `json:"p999_us"`
	MaxUs   float64 `json:"max_us"`
	MeanUs  float64 `json:"mean_us"`
	Dropped int64   `json:"dropped"`
}

// ErrSockperfOutput is returned when sockperf's output lacks the percentile summary.
var ErrSockperfOutput = errors.New("no percentile summary in sockperf output")

var (
	ansiEscape    = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	spPercentile  = regexp.MustCompile(`percentile\s+([\d.]+)\s*=\s*([\d.]+)`)
	spObservation = regexp.MustCompile(`<(MIN|MAX)> observation\s*=\s*([\d.]+)`)
	spAverage     = regexp.MustCompile(`avg-(?:rtt|lat)=([\d.]+)`)
	spTotal       = regexp.MustCompile(`Total (\d+) observations`)
	spDropped     = regexp.MustCompile(`# dropped messages = (\d+)`)
)

// ParseSockperf reads the statistics sockperf ping-pong prints (colour codes allowed).
func ParseSockperf(out string) (SockperfResult, error) {
	out = ansiEscape.ReplaceAllString(out, "")
	var r SockperfResult
	found := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := spPercentile.FindStringSubmatch(line); m != nil {
			found = true
			setPercentile(&r, atof(m[1]), atof(m[2]))
		}
		if m := spObservation.FindStringSubmatch(line); m != nil {
			if m[1] == "MIN" {
				r.MinUs = atof(m[2])
			} else {
				r.MaxUs = atof(m[2])
			}
		}
		if m := spAverage.FindStringSubmatch(line); m != nil {
			r.MeanUs = atof(m[1])
		}
		if m := spTotal.FindStringSubmatch(line); m != nil {
			r.Samples, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := spDropped.FindStringSubmatch(line); m != nil {
			r.Dropped, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	if !found {
		return r, ErrSockperfOutput
	}
	return r, nil
}

func setPercentile(r *SockperfResult, p, v float64) {
	switch p {
	case 50:
		r.P50Us = v
	case 90:
		r.P90Us = v
	case 99:
		r.P99Us = v
	case 99.9:
		r.P999Us = v
	}
}

func atof(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// Iperf3Result is the receiver-side rate of one `iperf3 -J` client run.
type Iperf3Result struct {
	BitsPerSec     float64 `json:"bits_per_sec"`      // as received by the server
	SentBitsPerSec float64 `json:"sent_bits_per_sec"` // as sent by the client
	Retransmits    int64   `json:"retransmits"`
}

// ParseIperf3 reads the end summary of `iperf3 -c … -J`.
func ParseIperf3(out []byte) (Iperf3Result, error) {
	var doc struct {
		Error string `json:"error"`
		End   struct {
			SumSent struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Retransmits   int64   `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return Iperf3Result{}, fmt.Errorf("parse iperf3 json: %w", err)
	}
	if doc.Error != "" {
		return Iperf3Result{}, fmt.Errorf("iperf3: %s", doc.Error)
	}
	return Iperf3Result{BitsPerSec: doc.End.SumReceived.BitsPerSecond,
		SentBitsPerSec: doc.End.SumSent.BitsPerSecond,
		Retransmits:    doc.End.SumSent.Retransmits}, nil
}

// wholeSeconds rounds d up to whole seconds, at least 1 (sockperf and iperf3 take seconds).
func wholeSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}

// sockperfPingPong runs one `sockperf ping-pong` from the client end. rate > 0 caps the
// messages per second (paced mode).
func (t *ToolEnds) sockperfPingPong(ctx context.Context, proto string, size int,
	d time.Duration, rate int) (SockperfResult, error) {
	ports := t.Ports.orDefaults()
	port := ports.SockperfUDP
	argv := []string{"sockperf", "ping-pong", "-i", t.Addr, "-m", strconv.Itoa(size),
		"-t", wholeSeconds(d), "--full-rtt"}
	if proto == "tcp" {
		port = ports.SockperfTCP
		argv = append(argv, "--tcp")
	}
	argv = append(argv, "-p", strconv.Itoa(port))
	if rate > 0 {
		argv = append(argv, "--mps", strconv.Itoa(rate))
	}
	out, err := t.Client.Exec(ctx, argv...)
	if err != nil {
		return SockperfResult{}, fmt.Errorf("sockperf ping-pong %s to %s: %w", proto, t.Addr, err)
	}
	res, err := ParseSockperf(string(out))
	if err != nil {
		return res, fmt.Errorf("sockperf ping-pong %s to %s: %w", proto, t.Addr, err)
	}
	return res, nil
}

// iperf3 runs one TCP `iperf3 -c` from the client end.
func (t *ToolEnds) iperf3(ctx context.Context, d time.Duration) (Iperf3Result, error) {
	port := strconv.Itoa(t.Ports.orDefaults().Iperf3)
	out, err := t.Client.Exec(ctx, "iperf3", "-c", t.Addr, "-p", port,
		"-t", wholeSeconds(d), "-J")
	if err != nil && len(out) == 0 {
		return Iperf3Result{}, fmt.Errorf("iperf3 to %s: %w", t.Addr, err)
	}
	res, perr := ParseIperf3(out)
	if perr != nil {
		return res, fmt.Errorf("iperf3 to %s: %w", t.Addr, errors.Join(perr, err))
	}
	return res, nil
}

// startServers runs sockperf (UDP and TCP) and iperf3 servers on the server end and waits
// until each listens. The returned function stops them all.
func (t *ToolEnds) startServers(ctx context.Context) (func() error, error) {
	ports := t.Ports.orDefaults()
	specs := []struct {
		argv  []string
		proto string
		port  int
	}{
		{[]string{"sockperf", "server", "-i", t.Addr, "-p", strconv.Itoa(ports.SockperfUDP)},
			"udp", ports.SockperfUDP},
		{[]string{"sockperf", "server", "--tcp", "-i", t.Addr, "-p",
			strconv.Itoa(ports.SockperfTCP)}, "tcp", ports.SockperfTCP},
		{[]string{"iperf3", "-s", "-B", t.Addr, "-p", strconv.Itoa(ports.Iperf3)}, "tcp",
			ports.Iperf3},
	}
	var procs []Proc
	stop := func() error {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.Stop(2*time.Second))
		}
		return errors.Join(errs...)
	}
	for _, s := range specs {
		p, err := t.Server.Spawn(ctx, s.argv...)
		if err != nil {
			return nil, errors.Join(err, stop())
		}
		procs = append(procs, p)
		if err := waitListening(ctx, t.Server, s.proto, s.port, 5*time.Second); err != nil {
			return nil, errors.Join(fmt.Errorf("start %s: %w", s.argv[0], err), stop())
		}
	}
	return stop, nil
}

// ErrNotListening is returned when a server did not bind its port in time.
var ErrNotListening = errors.New("port not listening")

// waitListening polls `ss -Hln{t|u} sport = :PORT` on n until a socket is bound.
func waitListening(ctx context.Context, n Node, proto string, port int,
	limit time.Duration) error {
	flag := "-Hlnt"
	if proto == "udp" {
		flag = "-Hlnu"
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := n.Exec(ctx, "ss", flag, "sport", "=", ":"+strconv.Itoa(port))
		if err == nil && len(strings.TrimSpace(string(out))) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s port %d on %s: %w", proto, port, n, ErrNotListening)
		case <-tick.C:
		}
	}
}
