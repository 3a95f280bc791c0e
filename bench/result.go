package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"hybridlab/probes"
)

// Result is everything one Run measured. It marshals to the latency.json format.
type Result struct {
	Started   time.Time  `json:"started"`
	DurationS float64    `json:"duration_s"`
	Settings  Settings   `json:"settings"`
	Floor     string     `json:"floor"`
	Paths     []PathInfo `json:"paths"`
	Order     []Trial    `json:"order"` // the interleaved latency trials, in run order
	Latency   []Latency  `json:"latency"`
	Noise     []Noise    `json:"noise"`
	Noisy     bool       `json:"noisy"` // any Noise entry is noisy
	// Routing compares each routed path with its shared-bridge counterpart.
	Routing  []Routing      `json:"routing,omitempty"`
	Tput     []Throughput   `json:"throughput,omitempty"`
	Fidelity []Fidelity     `json:"fidelity,omitempty"`
	TputFid  []TputFidelity `json:"throughput_fidelity,omitempty"`
	Env      Environment    `json:"environment"`
	Problems []string       `json:"problems,omitempty"` // failed trials and checks
}

// Settings records the Config a Result was measured with.
type Settings struct {
	Protos       []string `json:"protos"`
	Sizes        []int    `json:"sizes"`
	Repetitions  int      `json:"repetitions"`
	Count        int      `json:"count"`
	Warmup       int      `json:"warmup"`
	Mode         Mode     `json:"mode"`
	IntervalUs   float64  `json:"interval_us,omitempty"`
	NoiseLimit   float64  `json:"noise_limit"`
	NoiseMetric  string   `json:"noise_metric"`
	TputSeconds  float64  `json:"tput_seconds,omitempty"`
	TputReps     int      `json:"tput_repetitions,omitempty"`
	FidelityReps int      `json:"fidelity_repetitions,omitempty"`
}

// PathInfo describes a measured path.
type PathInfo struct {
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Targets     Targets     `json:"targets"`
	Interfaces  []Interface `json:"interfaces,omitempty"`
}

// Trial is one latency repetition of one path, protocol and size.
type Trial struct {
	Rep   int    `json:"rep"` // 1-based
	Path  string `json:"path"`
	Proto string `json:"proto"`
	Size  int    `json:"size"`
}

func (t Trial) String() string {
	return fmt.Sprintf("rep %d %s %s/%d", t.Rep, t.Path, t.Proto, t.Size)
}

// Latency is the request-response latency of one path, protocol and payload size over all
// repetitions. Percentiles come from the merged histogram of every repetition; the CIs are
// across repetitions.
type Latency struct {
	Path  string `json:"path"`
	Proto string `json:"proto"`
	Size  int    `json:"size"`
	// Merged summarises the union of all repetitions' histograms.
	Merged probes.Latency `json:"merged"`
	// Per-repetition p50, p99 and mean, in run order.
	RepP50Us  []float64 `json:"rep_p50_us"`
	RepP99Us  []float64 `json:"rep_p99_us"`
	RepMeanUs []float64 `json:"rep_mean_us"`
	P50CI     Interval  `json:"p50_ci"`
	MeanCI    Interval  `json:"mean_ci"`
	P50Var    Variation `json:"p50_variation"`
	// Ratios of Merged p50 and p99 to the floor's, same protocol and size (0 if no floor).
	P50Ratio float64 `json:"p50_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
	// Noisy is set when the floor these ratios divide by failed the noise gate.
	Noisy    bool         `json:"noisy"`
	Spectrum []Percentile `json:"spectrum"`
	Requests int64        `json:"requests"`
	Errors   int64        `json:"errors"`
	// Histogram is the merged HdrHistogram (ns, V2 compressed, base64).
	Histogram string `json:"histogram,omitempty"`
}

// Noise is the noise gate's verdict on the floor for one protocol and size: the floor's p50
// across repetitions is noisy when its coefficient of variation (sample stddev / mean)
// exceeds Limit. Spread ((max-min)/median) is reported alongside.
type Noise struct {
	Proto   string    `json:"proto"`
	Size    int       `json:"size"`
	Floor   Variation `json:"floor_p50"`
	Limit   float64   `json:"limit"`
	Noisy   bool      `json:"noisy"`
	Message string    `json:"message,omitempty"`
}

// Throughput is one path's probe tput over repetitions, in bits per second.
type Throughput struct {
	Path       string    `json:"path"`
	RepBps     []float64 `json:"rep_bits_per_sec"`
	Bps        Interval  `json:"bits_per_sec"`
	FloorRatio float64   `json:"floor_ratio"`
}

// Fidelity compares the probe with sockperf on one path, protocol and size; the values are
// medians over the alternating fidelity repetitions.
type Fidelity struct {
	Path          string  `json:"path"`
	Proto         string  `json:"proto"`
	Size          int     `json:"size"`
	ProbeP50Us    float64 `json:"probe_p50_us"`
	ProbeP99Us    float64 `json:"probe_p99_us"`
	SockperfP50Us float64 `json:"sockperf_p50_us"`
	SockperfP99Us float64 `json:"sockperf_p99_us"`
	P50Ratio      float64 `json:"p50_ratio"` // probe / sockperf
	P99Ratio      float64 `json:"p99_ratio"`
	P50OK         bool    `json:"p50_ok"` // P50Ratio <= FidelityP50Target
	P99OK         bool    `json:"p99_ok"` // P99Ratio <= FidelityP99Target
	Error         string  `json:"error,omitempty"`
}

// TputFidelity compares probe tput with iperf3 on one path (medians, bits per second).
type TputFidelity struct {
	Path      string  `json:"path"`
	ProbeBps  float64 `json:"probe_bits_per_sec"`
	Iperf3Bps float64 `json:"iperf3_bits_per_sec"`
	Ratio     float64 `json:"ratio"` // probe / iperf3
	Error     string  `json:"error,omitempty"`
}

// LatencyFor returns the row of path, proto and size, or nil.
func (r *Result) LatencyFor(path, proto string, size int) *Latency {
	for i := range r.Latency {
		l := &r.Latency[i]
		if l.Path == path && l.Proto == proto && l.Size == size {
			return l
		}
	}
	return nil
}

// WriteJSON writes r to dir/latency.json, creating dir.
func (r *Result) WriteJSON(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report dir %q: %w", dir, err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode latency result: %w", err)
	}
	name := filepath.Join(dir, "latency.json")
	if err := os.WriteFile(name, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	return nil
}

// ReadResult reads a latency.json written by WriteJSON.
func ReadResult(name string) (*Result, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read latency result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse latency result %q: %w", name, err)
	}
	return &r, nil
}
