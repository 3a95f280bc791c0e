// Command latency measures the lab-independent paths — loopback and the veth floor
// (network namespaces hlb-a and hlb-b, 10.99.0.1 ↔ 10.99.0.2) — with interleaved
// repetitions, optionally next to sockperf and iperf3, and writes latency.json and
// latency.html to -o (default reports/out). It needs root for the namespaces and removes
// them when it ends. Lab paths are added by the latency suite, which uses the same engine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"hybridlab/bench"
	"hybridlab/reports"
)

func main() {
	var (
		cfg      bench.Config
		sizes    string
		protos   string
		mode     string
		probeBin string
		out      string
		tools    bool
	)
	flag.IntVar(&cfg.Repetitions, "reps", 5, "interleaved repetitions per path")
	flag.IntVar(&cfg.Count, "count", 5000, "measured requests per repetition")
	flag.IntVar(&cfg.Warmup, "warmup", 500, "discarded requests before each repetition")
	flag.StringVar(&mode, "mode", "hot", "hot (back-to-back) or paced")
	flag.DurationVar(&cfg.Interval, "interval", 0, "paced mode: one request per interval")
	flag.StringVar(&sizes, "sizes", "64", "comma-separated payload sizes in bytes")
	flag.StringVar(&protos, "protos", "tcp,udp", "comma-separated protocols")
	flag.DurationVar(&cfg.TputDuration, "tput", 2*time.Second, "throughput run length (0: none)")
	flag.IntVar(&cfg.FidelityRepetitions, "fidelity", 3,
		"probe/sockperf/iperf3 alternations per path (0: no fidelity check)")
	flag.StringVar(&probeBin, "probe", "", "run this probe agent binary instead of in-process")
	flag.StringVar(&cfg.Accelerator, "accel", "none", "accelerator recorded in the report")
	flag.StringVar(&out, "o", "reports/out", "output directory")
	flag.Parse()
	cfg.Mode = bench.Mode(mode)
	tools = cfg.FidelityRepetitions > 0
	var err error
	if cfg.Sizes, err = parseInts(sizes); err != nil {
		fail(err)
	}
	cfg.Protos = strings.Split(protos, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, bench.PathOptions{ProbeBinary: probeBin, Tools: tools}, out); err != nil {
		fail(err)
	}
}

func run(ctx context.Context, cfg bench.Config, opt bench.PathOptions, out string) error {
	v := bench.DefaultVeth()
	if err := v.Up(ctx); err != nil {
		return err
	}
	// Tear-down must run even after ctx was cancelled by a signal.
	defer func() {
		if err := v.Down(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "latency: cleanup: %v\n", err)
		}
	}()
	cfg.Paths = []bench.Path{bench.LoopbackPath(opt), bench.VethPath(v, opt)}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	for _, l := range res.Latency {
		fmt.Printf("%-9s %s/%-5d p50 %8.2fµs  p99 %8.2fµs  p50/floor %.2f  noisy %v\n",
			l.Path, l.Proto, l.Size, l.Merged.P50Us, l.Merged.P99Us, l.P50Ratio, l.Noisy)
	}
	for _, p := range res.Problems {
		fmt.Fprintf(os.Stderr, "latency: problem: %s\n", p)
	}
	return reports.WriteLatency(out, res)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("parse size %q: %w", f, err)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no sizes")
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "latency: %v\n", err)
	os.Exit(1)
}
