package bench

import (
	"math"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"hybridlab/probes"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMeanCI(t *testing.T) {
	tests := []struct {
		name       string
		xs         []float64
		mean, half float64
	}{
		{"empty", nil, 0, 0},
		{"single value has no width", []float64{7}, 7, 0},
		// mean 2, s = 1, t(0.975, 2) = 4.302653: half = 4.302653 / sqrt(3)
		{"three values", []float64{1, 2, 3}, 2, 4.302653 / math.Sqrt(3)},
		// s = sqrt(2.5), t(0.975, 4) = 2.776445
		{"five values", []float64{10, 11, 12, 13, 14}, 12, 2.776445 * math.Sqrt(2.5) /
			math.Sqrt(5)},
		{"identical values", []float64{5, 5, 5, 5}, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := MeanCI(tt.xs)
			if !near(ci.Mean, tt.mean, 1e-9) || !near(ci.HalfWidth, tt.half, 1e-5) {
				t.Errorf("MeanCI(%v) = %+v, want mean %v half %v", tt.xs, ci, tt.mean, tt.half)
			}
			if !near(ci.Low, ci.Mean-ci.HalfWidth, 1e-12) ||
				!near(ci.High, ci.Mean+ci.HalfWidth, 1e-12) || ci.N != len(tt.xs) {
				t.Errorf("bounds %+v", ci)
			}
		})
	}
}

func TestTQuantileMatchesTables(t *testing.T) {
	for df, want := range map[float64]float64{1: 12.7062, 2: 4.3027, 9: 2.2622, 29: 2.0452,
		120: 1.9799} {
		if got := tQuantile(0.975, df); !near(got, want, 1e-4) {
			t.Errorf("t(0.975, %v) = %.5f, want %.4f", df, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	d := Describe([]float64{4, 1, 3, 2, 5})
	want := Spread{N: 5, Min: 1, Q1: 2, Median: 3, Q3: 4, Max: 5, IQR: 2, Mean: 3,
		Stddev: math.Sqrt(2.5)}
	if d != want {
		t.Errorf("Describe = %+v, want %+v", d, want)
	}
	even := Describe([]float64{1, 2, 3, 4})
	if even.Median != 2.5 || even.Q1 != 1.75 || even.Q3 != 3.25 {
		t.Errorf("even quartiles %+v", even)
	}
	if (Describe(nil) != Spread{}) {
		t.Error("Describe(nil) is not zero")
	}
}

func TestVary(t *testing.T) {
	v := Vary([]float64{9, 10, 11})
	if !near(v.CV, 0.1, 1e-12) || !near(v.Spread, 0.2, 1e-12) {
		t.Errorf("Vary = %+v, want cv 0.1 spread 0.2", v)
	}
	if (Vary([]float64{3}) != Variation{}) {
		t.Error("one value must have zero variation")
	}
}

// histogramOf records 1..n microseconds once each.
func histogramOf(n int) *probesHist {
	h := probes.NewHistogram()
	for i := 1; i <= n; i++ {
		_ = h.RecordValue(int64(i) * int64(time.Microsecond))
	}
	return h
}

type probesHist = hdrhistogram.Histogram

func TestSpectrumOfKnownHistogram(t *testing.T) {
	sp := Spectrum(histogramOf(1000))
	if len(sp) != len(SpectrumPercentiles) {
		t.Fatalf("%d points", len(sp))
	}
	want := map[float64]float64{0: 1, 50: 500, 90: 900, 99: 990, 100: 1000}
	for _, p := range sp {
		if w, ok := want[p.Percentile]; ok && !near(p.Us, w, w*0.001+0.001) {
			t.Errorf("p%v = %v µs, want %v", p.Percentile, p.Us, w)
		}
	}
	for i := 1; i < len(sp); i++ {
		if sp[i].Us < sp[i-1].Us {
			t.Errorf("spectrum not monotonic at %v", sp[i].Percentile)
		}
	}
	if Spectrum(probes.NewHistogram()) != nil {
		t.Error("empty histogram has a spectrum")
	}
}

func TestSchedule(t *testing.T) {
	got := Schedule([]string{"A", "B", "C"}, []string{"tcp", "udp"}, []int{64}, 2)
	var seq []string
	for _, tr := range got {
		seq = append(seq, tr.Path+tr.Proto[:1])
	}
	want := []string{"At", "Bt", "Ct", "Au", "Bu", "Cu", "At", "Bt", "Ct", "Au", "Bu", "Cu"}
	if len(seq) != len(want) {
		t.Fatalf("schedule %v", seq)
	}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("schedule %v, want %v", seq, want)
		}
	}
	if got[6].Rep != 2 || got[0].Rep != 1 {
		t.Errorf("repetition numbers %+v", got)
	}
}

func BenchmarkSpectrum(b *testing.B) {
	h := histogramOf(100000)
	for b.Loop() {
		_ = Spectrum(h)
	}
}
