package probes

import (
	"encoding/base64"
	"fmt"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in nanoseconds up to 60s with 3 significant
// digits. The lowest discernible value is 1ns rather than 1µs because a 1µs unit would
// quantise loopback round trips of about 10µs in 512ns steps.
const (
	histLowestNs  = int64(1)
	histHighestNs = int64(60 * time.Second)
	histSigFigs   = 3
)

// NewHistogram returns an empty latency histogram in nanoseconds (1ns–60s, 3 significant
// digits), the geometry every probe result uses so that encoded histograms merge.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowestNs, histHighestNs, histSigFigs)
}

// recordNs records d in h, clamping it into the histogram's range so that an out-of-range
// sample is never lost. With a positive interval it also adds the samples a paced sender
// would have taken while it was stalled (coordinated-omission correction). It does not
// allocate.
func recordNs(h *hdrhistogram.Histogram, d time.Duration, interval time.Duration) {
	v := int64(d)
	if v < histLowestNs {
		v = histLowestNs
	}
	if v > histHighestNs {
		v = histHighestNs
	}
	// Errors are impossible for a clamped, non-negative value; ignoring them keeps the
	// hot path free of allocations.
	if interval > 0 {
		_ = h.RecordCorrectedValue(v, int64(interval))
		return
	}
	_ = h.RecordValue(v)
}

// Latency summarises a histogram in microseconds.
type Latency struct {
	Samples  int64   `json:"samples"`
	MinUs    float64 `json:"min_us"`
	P50Us    float64 `json:"p50_us"`
	P90Us    float64 `json:"p90_us"`
	P99Us    float64 `json:"p99_us"`
	P999Us   float64 `json:"p999_us"`
	MaxUs    float64 `json:"max_us"`
	MeanUs   float64 `json:"mean_us"`
	StddevUs float64 `json:"stddev_us"`
}

// Summarize reports the percentiles of a nanosecond histogram h in microseconds.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return Latency{
		Samples:  h.TotalCount(),
		MinUs:    us(h.Min()),
		P50Us:    us(h.ValueAtQuantile(50)),
		P90Us:    us(h.ValueAtQuantile(90)),
		P99Us:    us(h.ValueAtQuantile(99)),
		P999Us:   us(h.ValueAtQuantile(99.9)),
		MaxUs:    us(h.Max()),
		MeanUs:   h.Mean() / 1e3,
		StddevUs: h.StdDev() / 1e3,
	}
}

// EncodeHistogram returns h in the compressed HdrHistogram V2 format, base64-encoded, so that
// results from several runs or nodes can be merged with DecodeHistogram and Merge.
func EncodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	raw, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// DecodeHistogram is the inverse of EncodeHistogram.
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode histogram base64: %w", err)
	}
	h, err := hdrhistogram.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// MergeHistograms decodes every encoded histogram and returns their union.
func MergeHistograms(encoded ...string) (*hdrhistogram.Histogram, error) {
	total := NewHistogram()
	for i, s := range encoded {
		h, err := DecodeHistogram(s)
		if err != nil {
			return nil, fmt.Errorf("merge histogram %d: %w", i, err)
		}
		if dropped := total.Merge(h); dropped > 0 {
			return nil, fmt.Errorf("merge histogram %d: %d values out of range", i, dropped)
		}
	}
	return total, nil
}
