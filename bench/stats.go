package bench

import (
	"math"
	"sort"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/gonum/stat/distuv"
)

// ConfidenceLevel is the two-sided level of every Interval in a Result.
const ConfidenceLevel = 0.95

// Interval is a confidence interval of the mean of per-repetition values, computed with
// Student's t-distribution (n-1 degrees of freedom). With fewer than two values the bounds
// equal the mean and HalfWidth is 0.
type Interval struct {
	N         int     `json:"n"`
	Mean      float64 `json:"mean"`
	Low       float64 `json:"low"`
	High      float64 `json:"high"`
	HalfWidth float64 `json:"half_width"`
	Level     float64 `json:"level"`
}

// MeanCI returns the ConfidenceLevel interval of the mean of xs.
func MeanCI(xs []float64) Interval {
	ci := Interval{N: len(xs), Level: ConfidenceLevel}
	if len(xs) == 0 {
		return ci
	}
	ci.Mean = mean(xs)
	ci.Low, ci.High = ci.Mean, ci.Mean
	if len(xs) < 2 {
		return ci
	}
	t := tQuantile(1-(1-ConfidenceLevel)/2, float64(len(xs)-1))
	ci.HalfWidth = t * stddev(xs) / math.Sqrt(float64(len(xs)))
	ci.Low = ci.Mean - ci.HalfWidth
	ci.High = ci.Mean + ci.HalfWidth
	return ci
}

// tQuantile is the p-quantile of Student's t-distribution with df degrees of freedom.
func tQuantile(p, df float64) float64 {
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(p)
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// stddev is the sample standard deviation (n-1 denominator); 0 for fewer than two values.
func stddev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss / float64(len(xs)-1))
}

// Spread describes a set of measurements: quartiles use linear interpolation between
// closest ranks (the method of R's default type 7), IQR = Q3 - Q1.
type Spread struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Q1     float64 `json:"q1"`
	Median float64 `json:"median"`
	Q3     float64 `json:"q3"`
	Max    float64 `json:"max"`
	IQR    float64 `json:"iqr"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"`
}

// Describe summarises xs; the zero Spread for no values. xs is not modified.
func Describe(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	sp := Spread{N: len(s), Min: s[0], Max: s[len(s)-1], Mean: mean(s), Stddev: stddev(s),
		Q1: quantileSorted(s, 0.25), Median: quantileSorted(s, 0.5), Q3: quantileSorted(s, 0.75)}
	sp.IQR = sp.Q3 - sp.Q1
	return sp
}

// quantileSorted interpolates the q-quantile (0..1) of sorted, non-empty s.
func quantileSorted(s []float64, q float64) float64 {
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// Variation is how much a path's p50 moved across repetitions.
type Variation struct {
	// CV is the coefficient of variation: sample standard deviation / mean.
	CV float64 `json:"cv"`
	// Spread is (max - min) / median, the relative range.
	Spread float64 `json:"spread"`
}

// Vary computes the Variation of xs (zero for fewer than two values or a zero mean).
func Vary(xs []float64) Variation {
	if len(xs) < 2 {
		return Variation{}
	}
	d := Describe(xs)
	var v Variation
	if d.Mean != 0 {
		v.CV = d.Stddev / d.Mean
	}
	if d.Median != 0 {
		v.Spread = (d.Max - d.Min) / d.Median
	}
	return v
}

// Percentile is one point of a latency percentile spectrum.
type Percentile struct {
	Percentile float64 `json:"percentile"`
	Us         float64 `json:"us"`
}

// SpectrumPercentiles are the points a Result keeps of each merged histogram: enough for a
// percentile-spectrum plot up to 99.99 without the whole histogram.
var SpectrumPercentiles = []float64{0, 1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95,
	97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 100}

// Spectrum reads SpectrumPercentiles from a nanosecond histogram, in microseconds.
func Spectrum(h *hdrhistogram.Histogram) []Percentile {
	if h.TotalCount() == 0 {
		return nil
	}
	out := make([]Percentile, 0, len(SpectrumPercentiles))
	for _, p := range SpectrumPercentiles {
		ns := h.ValueAtQuantile(p)
		switch p {
		case 0:
			ns = h.Min()
		case 100:
			ns = h.Max()
		}
		out = append(out, Percentile{Percentile: p, Us: float64(ns) / 1e3})
	}
	return out
}

// ratio returns a/b, or 0 when b is 0 (no floor to divide by).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
