package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"hybridlab/probes"
)

// Mode selects how requests are sent.
type Mode string

const (
	// Hot sends each request as soon as the previous reply arrived.
	Hot Mode = "hot"
	// Paced sends one request per Interval and records with coordinated-omission correction.
	Paced Mode = "paced"
)

// DefaultFloor is the name of the path every ratio divides by (see VethPath).
const DefaultFloor = "veth"

// NoiseMetric names how the noise gate measures variation.
const NoiseMetric = "cv" // sample stddev / mean of the floor's per-repetition p50

// Config is one measurement run. Zero fields take the defaults noted.
type Config struct {
	Paths       []Path
	Floor       string   // path every ratio divides by (default DefaultFloor)
	Protos      []string // "tcp", "udp" (default both)
	Sizes       []int    // payload bytes per request (default 64)
	Repetitions int      // interleaved repetitions per path, proto and size (default 5)
	Count       int      // measured requests per repetition (default 2000)
	Warmup      int      // discarded requests before each repetition (default 200)
	Mode        Mode     // Hot (default) or Paced
	Interval    time.Duration
	// TrialTimeout bounds one repetition (default 30s plus twice the paced schedule).
	TrialTimeout time.Duration
	// NoiseLimit is the floor p50 CV above which results are flagged noisy (default 0.05).
	NoiseLimit float64
	// TputDuration is the length of each probe tput run; 0 measures no throughput.
	TputDuration    time.Duration
	TputRepetitions int // default 3
	// FidelityRepetitions > 0 runs probe and sockperf/iperf3 alternately that many times on
	// every path with Tools. FidelityDuration is each tool run's length (default 1s).
	FidelityRepetitions int
	FidelityDuration    time.Duration
	// Accelerator is recorded in the environment (e.g. "tcg", "kvm", "none").
	Accelerator string
}

// ErrConfig is wrapped by Run's errors about an invalid Config.
var ErrConfig = errors.New("invalid bench config")

func (c *Config) normalize() error {
	setDefault(&c.Floor, DefaultFloor)
	if len(c.Protos) == 0 {
		c.Protos = []string{"tcp", "udp"}
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{probes.DefaultSize}
	}
	setDefault(&c.Repetitions, 5)
	setDefault(&c.Count, 2000)
	setDefault(&c.Warmup, 200)
	setDefault(&c.Mode, Hot)
	setDefault(&c.NoiseLimit, 0.05)
	setDefault(&c.TputRepetitions, 3)
	setDefault(&c.FidelityDuration, time.Second)
	if c.TrialTimeout == 0 {
		c.TrialTimeout = 30*time.Second + 2*time.Duration(c.Count+c.Warmup)*c.Interval
	}
	return c.validate()
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Paths) == 0 {
		errs = append(errs, errors.New("no paths"))
	}
	seen := map[string]bool{}
	for _, p := range c.Paths {
		if p.Name == "" || seen[p.Name] || p.Start == nil || p.Client == nil {
			errs = append(errs, fmt.Errorf("path %q: needs a unique name, Start and Client",
				p.Name))
		}
		seen[p.Name] = true
	}
	for _, p := range c.Protos {
		if p != "tcp" && p != "udp" {
			errs = append(errs, fmt.Errorf("protocol %q: want tcp or udp", p))
		}
	}
	switch {
	case c.Mode != Hot && c.Mode != Paced:
		errs = append(errs, fmt.Errorf("mode %q: want hot or paced", c.Mode))
	case c.Mode == Paced && c.Interval <= 0:
		errs = append(errs, errors.New("paced mode needs a positive interval"))
	case c.Mode == Hot && c.Interval != 0:
		errs = append(errs, errors.New("hot mode takes no interval"))
	}
	if c.Repetitions < 1 || c.Count < 1 || c.Warmup < 0 {
		errs = append(errs, errors.New("repetitions and count must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Schedule lists the latency trials of a run in the order Run performs them: repetition by
// repetition, and within one repetition every protocol and size across all paths in turn,
// so consecutive trials of the same path are separated by every other path (A B C A B C …).
func Schedule(paths []string, protos []string, sizes []int, reps int) []Trial {
	out := make([]Trial, 0, len(paths)*len(protos)*len(sizes)*reps)
	for rep := 1; rep <= reps; rep++ {
		for _, proto := range protos {
			for _, size := range sizes {
				for _, p := range paths {
					out = append(out, Trial{Rep: rep, Path: p, Proto: proto, Size: size})
				}
			}
		}
	}
	return out
}

// Run measures every path of cfg and returns the Result. It starts every path's server
// end first and stops them all before returning. Failed trials are listed in
// Result.Problems; Run fails only on an invalid Config, a server that does not start, or
// ctx ending.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	res := &Result{Started: time.Now().UTC(), Floor: cfg.Floor, Settings: settingsOf(cfg)}
	targets, stop, err := startPaths(ctx, cfg.Paths)
	if err != nil {
		return nil, err
	}
	defer stop()
	res.Paths = pathInfos(cfg.Paths, targets)

	trials, err := runLatency(ctx, cfg, targets, res)
	if err != nil {
		return nil, err
	}
	res.Latency = aggregate(cfg, trials, res)
	res.Noise = noiseGate(cfg, res.Latency)
	applyRatios(cfg, res)
	res.Routing = routingCosts(res.Latency)

	if err := runThroughput(ctx, cfg, targets, res); err != nil {
		return nil, err
	}
	if err := runFidelity(ctx, cfg, targets, res); err != nil {
		return nil, err
	}
	res.Env = CaptureEnvironment(ctx, cfg.Accelerator, interfacesOf(cfg.Paths))
	res.DurationS = time.Since(res.Started).Seconds()
	return res, nil
}

func settingsOf(c Config) Settings {
	s := Settings{Protos: c.Protos, Sizes: c.Sizes, Repetitions: c.Repetitions, Count: c.Count,
		Warmup: c.Warmup, Mode: c.Mode, IntervalUs: float64(c.Interval) / 1e3,
		NoiseLimit: c.NoiseLimit, NoiseMetric: NoiseMetric}
	if c.TputDuration > 0 {
		s.TputSeconds, s.TputReps = c.TputDuration.Seconds(), c.TputRepetitions
	}
	s.FidelityReps = c.FidelityRepetitions
	return s
}

// startPaths starts every path's server end; the returned function stops them in reverse.
func startPaths(ctx context.Context, paths []Path) (map[string]Targets, func(), error) {
	targets := map[string]Targets{}
	var stops []func() error
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			_ = stops[i]()
		}
	}
	for _, p := range paths {
		t, stop, err := p.Start(ctx)
		if err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("start server end of path %q: %w", p.Name, err)
		}
		targets[p.Name] = t
		stops = append(stops, stop)
	}
	return targets, stopAll, nil
}

func pathInfos(paths []Path, targets map[string]Targets) []PathInfo {
	out := make([]PathInfo, 0, len(paths))
	for _, p := range paths {
		out = append(out, PathInfo{Name: p.Name, Description: p.Description,
			Targets: targets[p.Name], Interfaces: p.Interfaces})
	}
	return out
}

func interfacesOf(paths []Path) []Interface {
	var out []Interface
	seen := map[Interface]bool{}
	for _, p := range paths {
		for _, i := range p.Interfaces {
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	return out
}

func pathByName(paths []Path, name string) Path {
	for _, p := range paths {
		if p.Name == name {
			return p
		}
	}
	return Path{}
}

// trialResult is one repetition's outcome.
type trialResult struct {
	Trial
	res probes.RRResult
	err error
}

// runLatency performs the interleaved schedule. A failed trial is kept (with its error) and
// listed in res.Problems; only ctx ending stops the run.
func runLatency(ctx context.Context, cfg Config, targets map[string]Targets,
	res *Result) ([]trialResult, error) {
	names := make([]string, 0, len(cfg.Paths))
	for _, p := range cfg.Paths {
		names = append(names, p.Name)
	}
	var out []trialResult
	for _, t := range Schedule(names, cfg.Protos, cfg.Sizes, cfg.Repetitions) {
		r, err := runTrial(ctx, cfg, pathByName(cfg.Paths, t.Path), targets[t.Path], t)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("latency %s: %w", t, ctx.Err())
		}
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("latency %s: %v", t, err))
		}
		res.Order = append(res.Order, t)
		out = append(out, trialResult{Trial: t, res: r, err: err})
	}
	return out, nil
}

func runTrial(ctx context.Context, cfg Config, p Path, t Targets, tr Trial) (probes.RRResult,
	error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.TrialTimeout)
	defer cancel()
	return p.Client.RR(ctx, probes.RRConfig{Target: t.For(tr.Proto), Proto: tr.Proto,
		Count: cfg.Count, Size: tr.Size, Interval: cfg.Interval, Warmup: cfg.Warmup})
}
