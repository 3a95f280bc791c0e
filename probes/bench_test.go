package probes

import (
	"testing"
	"time"
)

func benchConn(b testing.TB, proto string) *rrConn {
	return benchConnWith(b, startLoopback(b), RRConfig{Proto: proto})
}

// benchConnWith dials s's echo for cfg.Proto with a 64-byte payload and cfg's I/O mode.
func benchConnWith(b testing.TB, s *Server, cfg RRConfig) *rrConn {
	cfg.Target = s.Addrs().TCP
	if cfg.Proto == "udp" {
		cfg.Target = s.Addrs().UDP
	}
	cfg.Size, cfg.Timeout = 64, time.Second
	c, err := dialRR(testContext(b), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// benchRR measures one request-response exchange and its histogram recording, the body of
// RunRR's loop. Allocations of the in-process echo server count too.
func benchRR(b *testing.B, proto string) {
	benchLoop(b, benchConn(b, proto))
}

func benchLoop(b *testing.B, c *rrConn) {
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
