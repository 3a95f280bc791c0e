package probes

import (
	"math"
	"testing"
	"time"
)

func near(got, want float64) bool { return math.Abs(got-want) <= want*0.001+0.001 }

func TestSummarizeKnownPercentiles(t *testing.T) {
	h := NewHistogram()
	for v := 1; v <= 10000; v++ {
		recordNs(h, time.Duration(v)*time.Microsecond, 0)
	}
	got := Summarize(h)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"min", got.MinUs, 1}, {"p50", got.P50Us, 5000}, {"p90", got.P90Us, 9000},
		{"p99", got.P99Us, 9900}, {"p999", got.P999Us, 9990}, {"max", got.MaxUs, 10000},
		{"mean", got.MeanUs, 5000.5},
	} {
		// 3 significant digits: values are exact to within 0.1%.
		if !near(c.got, c.want) {
			t.Errorf("%s = %v µs, want %v within 0.1%%", c.name, c.got, c.want)
		}
	}
	if got.Samples != 10000 {
		t.Errorf("samples = %d", got.Samples)
	}
}

func TestRecordClampsAndCorrects(t *testing.T) {
	h := NewHistogram()
	recordNs(h, -time.Nanosecond, 0)
	recordNs(h, 2*time.Minute, 0)
	if h.Min() != 1 || h.Max() < int64(59*time.Second) ||
		h.TotalCount() != 2 {
		t.Fatalf("clamping: min %d max %d count %d", h.Min(), h.Max(), h.TotalCount())
	}

	h = NewHistogram()
	// A 10ms stall with a 1ms pacing interval stands for the 9 requests that could not be
	// sent: 10, 9, …, 1 ms.
	recordNs(h, 10*time.Millisecond, time.Millisecond)
	if h.TotalCount() != 10 || !near(Summarize(h).P50Us, 5000) {
		t.Fatalf("corrected: count %d p50 %v", h.TotalCount(), Summarize(h).P50Us)
	}
}

func TestHistogramEncodeMergeRoundTrip(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for v := 1; v <= 100; v++ {
		recordNs(a, time.Duration(v)*time.Microsecond, 0)
		recordNs(b, time.Duration(v+100)*time.Microsecond, 0)
	}
	ea, err := EncodeHistogram(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := EncodeHistogram(b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := MergeHistograms(ea, eb)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(m)
	if s.Samples != 200 || !near(s.P50Us, 100) || !near(s.MaxUs, 200) {
		t.Fatalf("merged summary %+v", s)
	}
	if _, err := MergeHistograms("not base64!"); err == nil {
		t.Fatal("merging garbage succeeded")
	}
}

func TestSummarizeEmpty(t *testing.T) {
	if got := Summarize(NewHistogram()); got != (Latency{}) {
		t.Fatalf("empty summary %+v", got)
	}
}
