// Command updown times the lab's bring-up and tear-down: it builds ./setup once, runs one
// untimed warm-up cycle (which builds images and boxes into the cache), then times
// `setup up --vms=false` (or with VMs, -vms) and `setup down` over -runs cycles, prints the
// median, min/max and IQR of each, and writes them as JSON (default reports/out/updown.json).
//
// It acts on the real lab named by -f (default: the embedded default lab) and needs root.
// Run it from the repository root: `make bench-updown RUNS=5 [VMS=1]`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"hybridlab/bench"
)

type options struct {
	runs  int
	vms   bool
	setup string // prebuilt setup binary; "" builds ./setup
	lab   string // -f lab.yaml passed to setup
	out   string
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "timed up/down cycles after the warm-up")
	flag.BoolVar(&o.vms, "vms", false, "bring up the lab's VMs too")
	flag.StringVar(&o.setup, "setup", "", "use this setup binary instead of building ./setup")
	flag.StringVar(&o.lab, "f", "", "lab file passed to setup (default: the default lab)")
	flag.StringVar(&o.out, "o", "reports/out/updown.json", "where to write the JSON result")
	flag.Parse()
	if o.runs < 1 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: updown [-runs N] [-vms] [-setup BIN] [-f lab.yaml] [-o FILE]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "updown: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log io.Writer) error {
	if o.setup == "" {
		bin, cleanup, err := buildSetup(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		o.setup = bin
	}
	c := cycler{setup: o.setup, lab: o.lab, vms: o.vms, log: log, now: time.Now,
		exec: execCommand}
	rep, err := c.measure(ctx, o.runs)
	if err != nil {
		return err
	}
	printSummary(log, rep)
	return writeReport(o.out, rep)
}

// buildSetup compiles ./setup into a temporary directory, so every cycle runs the same
// binary and no cycle pays for compilation.
func buildSetup(ctx context.Context) (string, func(), error) {
	dir, err := os.MkdirTemp("", "hybridlab-updown-")
	if err != nil {
		return "", nil, fmt.Errorf("create build dir: %w", err)
	}
	bin := filepath.Join(dir, "setup")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./setup")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build ./setup: %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

func execCommand(ctx context.Context, out io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// Sample is one timed cycle.
type Sample struct {
	Run   int     `json:"run"` // 0 is the warm-up
	UpS   float64 `json:"up_s"`
	DownS float64 `json:"down_s"`
}

// Report is what updown writes.
type Report struct {
	Started time.Time    `json:"started"`
	Runs    int          `json:"runs"`
	VMs     bool         `json:"vms"`
	Command []string     `json:"up_command"`
	Warmup  Sample       `json:"warmup"`
	Samples []Sample     `json:"samples"`
	Up      bench.Spread `json:"up_s"`
	Down    bench.Spread `json:"down_s"`
}

// cycler runs setup up/down cycles.
type cycler struct {
	setup string
	lab   string
	vms   bool
	log   io.Writer
	now   func() time.Time
	exec  func(ctx context.Context, out io.Writer, name string, args ...string) error
}

func (c cycler) args(cmd string, extra ...string) []string {
	var a []string
	if c.lab != "" {
		a = append(a, "-f", c.lab)
	}
	return append(append(a, cmd), extra...)
}

func (c cycler) upArgs() []string { return c.args("up", fmt.Sprintf("--vms=%t", c.vms)) }

// measure runs the warm-up cycle and then runs timed cycles. A failed up is followed by a
// down, so that a failure leaves no lab behind.
func (c cycler) measure(ctx context.Context, runs int) (Report, error) {
	rep := Report{Started: c.now().UTC(), Runs: runs, VMs: c.vms,
		Command: append([]string{"setup"}, c.upArgs()...)}
	var err error
	if rep.Warmup, err = c.cycle(ctx, 0); err != nil {
		return rep, err
	}
	var ups, downs []float64
	for i := 1; i <= runs; i++ {
		s, err := c.cycle(ctx, i)
		if err != nil {
			return rep, err
		}
		rep.Samples = append(rep.Samples, s)
		ups, downs = append(ups, s.UpS), append(downs, s.DownS)
	}
	rep.Up, rep.Down = bench.Describe(ups), bench.Describe(downs)
	return rep, nil
}

func (c cycler) cycle(ctx context.Context, run int) (Sample, error) {
	s := Sample{Run: run}
	fmt.Fprintf(c.log, "updown: cycle %d: setup %v\n", run, c.upArgs())
	up, err := c.timed(ctx, c.upArgs())
	if err != nil {
		_, derr := c.timed(ctx, c.args("down"))
		return s, errors.Join(fmt.Errorf("cycle %d: setup up: %w", run, err), derr)
	}
	down, err := c.timed(ctx, c.args("down"))
	if err != nil {
		return s, fmt.Errorf("cycle %d: setup down: %w", run, err)
	}
	s.UpS, s.DownS = up.Seconds(), down.Seconds()
	return s, nil
}

func (c cycler) timed(ctx context.Context, args []string) (time.Duration, error) {
	start := c.now()
	err := c.exec(ctx, c.log, c.setup, args...)
	return c.now().Sub(start), err
}

func printSummary(w io.Writer, r Report) {
	for _, x := range []struct {
		name string
		s    bench.Spread
	}{{"up", r.Up}, {"down", r.Down}} {
		fmt.Fprintf(w, "%-5s median %6.2fs  min %6.2fs  max %6.2fs  IQR %5.2fs  (%d runs)\n",
			x.name, x.s.Median, x.s.Min, x.s.Max, x.s.IQR, x.s.N)
	}
}

func writeReport(name string, r Report) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("create dir of %q: %w", name, err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode updown report: %w", err)
	}
	if err := os.WriteFile(name, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	return nil
}
