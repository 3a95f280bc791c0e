package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"hybridlab/probes"
)

// runThroughput measures probe tput on every path, repetitions interleaved across paths.
func runThroughput(ctx context.Context, cfg Config, targets map[string]Targets,
	res *Result) error {
	if cfg.TputDuration <= 0 {
		return nil
	}
	reps := map[string][]float64{}
	for rep := 1; rep <= cfg.TputRepetitions; rep++ {
		for _, p := range cfg.Paths {
			bps, err := tputOnce(ctx, cfg, p, targets[p.Name])
			if ctx.Err() != nil {
				return fmt.Errorf("throughput rep %d %s: %w", rep, p.Name, ctx.Err())
			}
			if err != nil {
				res.Problems = append(res.Problems,
					fmt.Sprintf("throughput rep %d %s: %v", rep, p.Name, err))
				continue
			}
			reps[p.Name] = append(reps[p.Name], bps)
		}
	}
	for _, p := range cfg.Paths {
		res.Tput = append(res.Tput, Throughput{Path: p.Name, RepBps: reps[p.Name],
			Bps: MeanCI(reps[p.Name])})
	}
	floor := MeanCI(reps[cfg.Floor]).Mean
	for i := range res.Tput {
		res.Tput[i].FloorRatio = ratio(res.Tput[i].Bps.Mean, floor)
	}
	return nil
}

func tputOnce(ctx context.Context, cfg Config, p Path, t Targets) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.TputDuration+30*time.Second)
	defer cancel()
	r, err := p.Client.Tput(ctx, probes.TputConfig{Target: t.Sink, Duration: cfg.TputDuration})
	return r.BitsPerSec, err
}

// runFidelity alternates the probe with sockperf and iperf3 on every path with Tools.
func runFidelity(ctx context.Context, cfg Config, targets map[string]Targets,
	res *Result) error {
	if cfg.FidelityRepetitions <= 0 {
		return nil
	}
	for _, p := range cfg.Paths {
		if p.Tools == nil {
			continue
		}
		if err := fidelityOf(ctx, cfg, p, targets[p.Name], res); err != nil {
			return err
		}
	}
	return nil
}

func fidelityOf(ctx context.Context, cfg Config, p Path, t Targets, res *Result) error {
	stop, err := p.Tools.startServers(ctx)
	if err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("fidelity %s: %v", p.Name, err))
		return ctx.Err()
	}
	defer stop()
	for _, proto := range cfg.Protos {
		for _, size := range cfg.Sizes {
			res.Fidelity = append(res.Fidelity, latencyFidelity(ctx, cfg, p, t, proto, size))
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if cfg.TputDuration > 0 {
		res.TputFid = append(res.TputFid, tputFidelity(ctx, cfg, p, t))
	}
	return ctx.Err()
}

// latencyFidelity runs probe rr and sockperf ping-pong alternately and compares medians.
func latencyFidelity(ctx context.Context, cfg Config, p Path, t Targets, proto string,
	size int) Fidelity {
	f := Fidelity{Path: p.Name, Proto: proto, Size: size}
	if size < sockperfMinSize {
		f.Error = fmt.Sprintf("sockperf sends at least %d bytes", sockperfMinSize)
		return f
	}
	rate := 0
	if cfg.Mode == Paced {
		rate = int(time.Second / cfg.Interval)
	}
	var pp50, pp99, sp50, sp99 []float64
	for rep := 1; rep <= cfg.FidelityRepetitions; rep++ {
		pr, err := timedRR(ctx, cfg, p, t.For(proto), proto, size)
		if err != nil {
			f.Error = fmt.Sprintf("probe rep %d: %v", rep, err)
			return f
		}
		sr, err := p.Tools.sockperfPingPong(ctx, proto, size, cfg.FidelityDuration, rate)
		if err != nil {
			f.Error = fmt.Sprintf("sockperf rep %d: %v", rep, err)
			return f
		}
		pp50, pp99 = append(pp50, pr.P50Us), append(pp99, pr.P99Us)
		sp50, sp99 = append(sp50, sr.P50Us), append(sp99, sr.P99Us)
	}
	f.ProbeP50Us, f.ProbeP99Us = median(pp50), median(pp99)
	f.SockperfP50Us, f.SockperfP99Us = median(sp50), median(sp99)
	f.P50Ratio = ratio(f.ProbeP50Us, f.SockperfP50Us)
	f.P99Ratio = ratio(f.ProbeP99Us, f.SockperfP99Us)
	f.P50OK = f.P50Ratio > 0 && f.P50Ratio <= FidelityP50Target
	f.P99OK = f.P99Ratio > 0 && f.P99Ratio <= FidelityP99Target
	return f
}

// timedRR runs the probe for FidelityDuration, the length of a sockperf run, so that both
// tools' percentiles rest on a like number of samples.
func timedRR(ctx context.Context, cfg Config, p Path, target, proto string,
	size int) (probes.RRResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.TrialTimeout+cfg.FidelityDuration)
	defer cancel()
	return p.Client.RR(ctx, probes.RRConfig{Target: target, Proto: proto, Size: size,
		Duration: cfg.FidelityDuration, Interval: cfg.Interval, Warmup: cfg.Warmup})
}

// tputFidelity runs probe tput and iperf3 alternately and compares medians.
func tputFidelity(ctx context.Context, cfg Config, p Path, t Targets) TputFidelity {
	f := TputFidelity{Path: p.Name}
	var probe, iperf []float64
	for rep := 1; rep <= cfg.FidelityRepetitions; rep++ {
		bps, err := tputOnce(ctx, cfg, p, t)
		if err != nil {
			f.Error = fmt.Sprintf("probe tput rep %d: %v", rep, err)
			return f
		}
		ir, err := p.Tools.iperf3(ctx, cfg.TputDuration)
		if err != nil {
			f.Error = fmt.Sprintf("iperf3 rep %d: %v", rep, err)
			return f
		}
		probe, iperf = append(probe, bps), append(iperf, ir.BitsPerSec)
	}
	f.ProbeBps, f.Iperf3Bps = median(probe), median(iperf)
	f.Ratio = ratio(f.ProbeBps, f.Iperf3Bps)
	return f
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return quantileSorted(s, 0.5)
}
