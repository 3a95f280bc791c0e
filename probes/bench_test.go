package probes

import (
	"testing"
	"time"
)

func benchConn(b testing.TB, proto string) *rrConn {
	s := startLoopback(b)
	target := s.Addrs().TCP
	if proto == "udp" {
		target = s.Addrs().UDP
	}
	c, err := dialRR(testContext(b), RRConfig{Target: target, Proto: proto, Size: 64,
		Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchRR measures one request-response exchange and its histogram recording, the body of
// RunRR's loop. Allocations of the in-process echo server count too.
func benchRR(b *testing.B, proto string) {
	c := benchConn(b, proto)
	h := NewHistogram()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rtt, err := c.roundTrip()
		if err != nil {
			b.Fatal(err)
		}
		recordNs(h, rtt, 0)
	}
	b.ReportMetric(Summarize(h).P50Us, "p50-µs")
}

func BenchmarkRRTCP(b *testing.B) { benchRR(b, "tcp") }

func BenchmarkRRUDP(b *testing.B) { benchRR(b, "udp") }

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	b.ReportAllocs()
	var d time.Duration
	for b.Loop() {
		d = (d + 7919) % (10 * time.Millisecond)
		recordNs(h, d, 0)
	}
}

func BenchmarkHistogramRecordCorrected(b *testing.B) {
	h := NewHistogram()
	b.ReportAllocs()
	for b.Loop() {
		recordNs(h, 3*time.Millisecond, time.Millisecond)
	}
}

// TestRoundTripDoesNotAllocate guards the zero-allocation hot path that the benchmarks report.
func TestRoundTripDoesNotAllocate(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		c := benchConn(t, proto)
		h := NewHistogram()
		allocs := testing.AllocsPerRun(500, func() {
			rtt, err := c.roundTrip()
			if err != nil {
				t.Fatal(err)
			}
			recordNs(h, rtt, time.Microsecond)
		})
		if allocs != 0 {
			t.Errorf("%s: %.2f allocations per request, want 0", proto, allocs)
		}
	}
}
