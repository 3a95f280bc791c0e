package bench

import (
	"fmt"

	"hybridlab/probes"
)

type latencyKey struct {
	path, proto string
	size        int
}

// aggregate merges the repetitions of each path, protocol and size, in config order.
// Problems decoding a histogram are appended to res.Problems.
func aggregate(cfg Config, trials []trialResult, res *Result) []Latency {
	byKey := map[latencyKey][]trialResult{}
	for _, t := range trials {
		k := latencyKey{t.Path, t.Proto, t.Size}
		byKey[k] = append(byKey[k], t)
	}
	var out []Latency
	for _, p := range cfg.Paths {
		for _, proto := range cfg.Protos {
			for _, size := range cfg.Sizes {
				l, err := merge(latencyKey{p.Name, proto, size}, byKey[latencyKey{p.Name,
					proto, size}])
				if err != nil {
					res.Problems = append(res.Problems, err.Error())
				}
				out = append(out, l)
			}
		}
	}
	return out
}

// merge combines the successful repetitions of one key: per-repetition figures in run
// order, their confidence intervals, and the union histogram's percentiles.
func merge(k latencyKey, trials []trialResult) (Latency, error) {
	l := Latency{Path: k.path, Proto: k.proto, Size: k.size}
	h := probes.NewHistogram()
	for _, t := range trials {
		l.Requests += t.res.Count
		l.Errors += t.res.Errors
		if t.err != nil || t.res.Samples == 0 {
			continue
		}
		one, err := probes.DecodeHistogram(t.res.Histogram)
		if err != nil {
			return l, fmt.Errorf("merge latency %s: %w", t.Trial, err)
		}
		if dropped := h.Merge(one); dropped > 0 {
			return l, fmt.Errorf("merge latency %s: %d values out of range", t.Trial, dropped)
		}
		l.RepP50Us = append(l.RepP50Us, t.res.P50Us)
		l.RepP99Us = append(l.RepP99Us, t.res.P99Us)
		l.RepMeanUs = append(l.RepMeanUs, t.res.MeanUs)
	}
	l.Merged = probes.Summarize(h)
	l.Spectrum = Spectrum(h)
	l.P50CI = MeanCI(l.RepP50Us)
	l.MeanCI = MeanCI(l.RepMeanUs)
	l.P50Var = Vary(l.RepP50Us)
	if h.TotalCount() > 0 {
		enc, err := probes.EncodeHistogram(h)
		if err != nil {
			return l, fmt.Errorf("merge latency %s %s/%d: %w", k.path, k.proto, k.size, err)
		}
		l.Histogram = enc
	}
	return l, nil
}

// noiseGate judges the floor's per-repetition p50 for every protocol and size.
func noiseGate(cfg Config, rows []Latency) []Noise {
	var out []Noise
	for _, proto := range cfg.Protos {
		for _, size := range cfg.Sizes {
			out = append(out, judge(cfg.Floor, cfg.NoiseLimit, proto, size, rows))
		}
	}
	return out
}

func judge(floor string, limit float64, proto string, size int, rows []Latency) Noise {
	n := Noise{Proto: proto, Size: size, Limit: limit}
	f := findRow(rows, floor, proto, size)
	switch {
	case f == nil || len(f.RepP50Us) == 0:
		n.Noisy = true
		n.Message = fmt.Sprintf("floor %q has no %s/%d measurement", floor, proto, size)
	case len(f.RepP50Us) < 2:
		n.Noisy = true
		n.Message = fmt.Sprintf("floor %q has one %s/%d repetition; variation unknown",
			floor, proto, size)
	default:
		n.Floor = f.P50Var
		n.Noisy = n.Floor.CV > limit
		if n.Noisy {
			n.Message = fmt.Sprintf("floor %q %s/%d p50 varied by CV %.1f%% (range %.1f%% of "+
				"median) across %d repetitions, above the %.1f%% limit", floor, proto, size,
				100*n.Floor.CV, 100*n.Floor.Spread, len(f.RepP50Us), 100*limit)
		}
	}
	return n
}

func findRow(rows []Latency, path, proto string, size int) *Latency {
	for i := range rows {
		if rows[i].Path == path && rows[i].Proto == proto && rows[i].Size == size {
			return &rows[i]
		}
	}
	return nil
}

// applyRatios divides every row's p50 and p99 by the floor's of the same protocol and size
// and copies the noise verdict onto it.
func applyRatios(cfg Config, res *Result) {
	for i := range res.Latency {
		l := &res.Latency[i]
		f := findRow(res.Latency, cfg.Floor, l.Proto, l.Size)
		if f != nil {
			l.P50Ratio = ratio(l.Merged.P50Us, f.Merged.P50Us)
			l.P99Ratio = ratio(l.Merged.P99Us, f.Merged.P99Us)
		}
		for _, n := range res.Noise {
			if n.Proto == l.Proto && n.Size == l.Size {
				l.Noisy = n.Noisy
			}
		}
		if f == nil || f.Merged.P50Us == 0 {
			l.Noisy = true
		}
	}
	for _, n := range res.Noise {
		res.Noisy = res.Noisy || n.Noisy
	}
}
