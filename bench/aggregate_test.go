package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"hybridlab/probes"
)

// fakeClient answers RR with a histogram of constant latency: base µs for the path, times
// the factor of the repetition it is in (so the floor's variation is chosen by the test).
type fakeClient struct {
	mu      sync.Mutex
	base    float64
	factors []float64 // per call
	calls   int
	log     *[]string
	name    string
	fail    bool
}

func (f *fakeClient) RR(_ context.Context, cfg probes.RRConfig) (probes.RRResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.log = append(*f.log, f.name+"/"+cfg.Proto)
	factor := 1.0
	if f.calls < len(f.factors) {
		factor = f.factors[f.calls]
	}
	f.calls++
	if f.fail {
		return probes.RRResult{}, errors.New("dial refused")
	}
	h := probes.NewHistogram()
	for i := 0; i < cfg.Count; i++ {
		us := f.base * factor
		if i == cfg.Count-1 {
			us *= 10 // one outlier sets the max and p99.9 but not p99
		}
		_ = h.RecordValue(int64(us * 1e3))
	}
	res := probes.RRResult{Proto: cfg.Proto, Count: int64(cfg.Count), OK: int64(cfg.Count),
		Latency: probes.Summarize(h)}
	enc, err := probes.EncodeHistogram(h)
	res.Histogram = enc
	return res, err
}

func (f *fakeClient) Tput(context.Context, probes.TputConfig) (probes.TputResult, error) {
	return probes.TputResult{BitsPerSec: 1e9 / f.base}, nil
}

func fakePath(name string, c *fakeClient) Path {
	c.name = name
	return Path{Name: name, Client: c, Start: func(context.Context) (Targets, func() error,
		error) {
		return Targets{TCP: "192.0.2.1:1", UDP: "192.0.2.1:2", Sink: "192.0.2.1:3"}, noStop, nil
	}}
}

func TestRunWithFakePaths(t *testing.T) {
	var log []string
	floor := &fakeClient{base: 10, log: &log}
	vm := &fakeClient{base: 30, log: &log}
	broken := &fakeClient{base: 1, log: &log, fail: true}
	cfg := Config{Paths: []Path{fakePath("veth", floor), fakePath("vm", vm),
		fakePath("broken", broken)}, Protos: []string{"tcp"}, Repetitions: 3, Count: 100,
		TputDuration: time.Millisecond}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantLog := strings.Repeat("veth/tcp vm/tcp broken/tcp ", 3)
	if got := strings.Join(log, " ") + " "; got != wantLog {
		t.Errorf("calls %q, want interleaved %q", got, wantLog)
	}
	row := res.LatencyFor("vm", "tcp", 64)
	if !near(row.P50Ratio, 3, 0.003) || !near(row.P99Ratio, 3, 0.003) || row.Merged.Samples != 300 {
		t.Errorf("vm row %+v", row)
	}
	if res.Noisy || row.Noisy {
		t.Errorf("a constant floor is not noisy: %+v", res.Noise)
	}
	if len(res.Problems) != 3 || !strings.Contains(res.Problems[0], "broken") {
		t.Errorf("problems %q", res.Problems)
	}
	if b := res.LatencyFor("broken", "tcp", 64); b.Merged.Samples != 0 || b.P50Ratio != 0 {
		t.Errorf("broken row %+v", b)
	}
	if res.Tput[1].FloorRatio != 1.0/3 {
		t.Errorf("throughput ratio %v", res.Tput[1].FloorRatio)
	}
}

func TestNoiseGate(t *testing.T) {
	tests := []struct {
		name    string
		factors []float64
		noisy   bool
	}{
		{"steady floor", []float64{1, 1.01, 0.99}, false},
		{"cv just under 5%", []float64{0.95, 1, 1.05}, false}, // cv 0.05 exactly
		{"cv 10%", []float64{0.9, 1, 1.1}, true},
		{"one outlier repetition", []float64{1, 1, 1, 1, 1.5}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			floor := &fakeClient{base: 100, factors: tt.factors, log: &log}
			cfg := Config{Paths: []Path{fakePath("veth", floor)}, Protos: []string{"udp"},
				Repetitions: len(tt.factors), Count: 50}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			n := res.Noise[0]
			if n.Noisy != tt.noisy || res.Noisy != tt.noisy || res.Latency[0].Noisy != tt.noisy {
				t.Errorf("noisy = %v, want %v (%+v)", n.Noisy, tt.noisy, n)
			}
			if tt.noisy && !strings.Contains(n.Message, "CV") {
				t.Errorf("message %q lacks the figure", n.Message)
			}
		})
	}
}

func TestMissingFloorIsFlagged(t *testing.T) {
	var log []string
	cfg := Config{Paths: []Path{fakePath("vm", &fakeClient{base: 5, log: &log})},
		Protos: []string{"tcp"}, Repetitions: 2, Count: 10}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Noisy || res.Latency[0].P50Ratio != 0 || !res.Latency[0].Noisy {
		t.Errorf("without a floor: %+v %+v", res.Noise, res.Latency[0])
	}
}

func TestConfigValidation(t *testing.T) {
	var log []string
	p := fakePath("veth", &fakeClient{base: 1, log: &log})
	bad := []Config{
		{},
		{Paths: []Path{p, p}},
		{Paths: []Path{p}, Protos: []string{"sctp"}},
		{Paths: []Path{p}, Mode: Paced},
		{Paths: []Path{p}, Interval: time.Millisecond},
		{Paths: []Path{p}, Count: -1},
	}
	for i, c := range bad {
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("config %d: err %v, want ErrConfig", i, err)
		}
	}
}

func TestRatio(t *testing.T) {
	for _, tt := range []struct{ a, b, want float64 }{{30, 10, 3}, {5, 0, 0}, {0, 4, 0}} {
		if got := ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("ratio(%v, %v) = %v", tt.a, tt.b, got)
		}
	}
}

func BenchmarkMergeRepetitions(b *testing.B) {
	var trials []trialResult
	var log []string
	c := &fakeClient{base: 20, log: &log}
	for rep := 1; rep <= 10; rep++ {
		r, err := c.RR(context.Background(), probes.RRConfig{Proto: "tcp", Count: 5000})
		if err != nil {
			b.Fatal(err)
		}
		trials = append(trials, trialResult{Trial: Trial{Rep: rep, Path: "p", Proto: "tcp",
			Size: 64}, res: r})
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := merge(latencyKey{"p", "tcp", 64}, trials); err != nil {
			b.Fatal(fmt.Errorf("merge: %w", err))
		}
	}
}

func TestRoutingComparesRoutedWithSharedPath(t *testing.T) {
	var log []string
	cfg := Config{Paths: []Path{
		fakePath("veth", &fakeClient{base: 10, log: &log}),
		fakePath("container-vm", &fakeClient{base: 20, log: &log}),
		fakePath("container-vm-routed", &fakeClient{base: 25, log: &log}),
		fakePath("lonely-routed", &fakeClient{base: 40, log: &log}),
	}, Protos: []string{"tcp", "udp"}, Repetitions: 2, Count: 100,
		TputDuration: time.Millisecond}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Routing) != 2 {
		t.Fatalf("routing rows %+v, want tcp and udp for container-vm-routed only", res.Routing)
	}
	for _, r := range res.Routing {
		if r.Routed != "container-vm-routed" || r.Shared != "container-vm" ||
			!near(r.P50Ratio, 1.25, 0.003) || !near(r.AddedUs, 5, 0.05) {
			t.Errorf("routing row %+v, want p50 ratio 1.25 and 5 µs added", r)
		}
	}
}
