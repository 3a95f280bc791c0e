package probes

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRunRRCountsRequests(t *testing.T) {
	s := startLoopback(t)
	for _, tc := range []struct {
		proto, target string
		size          int
	}{
		{"tcp", s.Addrs().TCP, 1},
		{"tcp", s.Addrs().TCP, 100000},
		{"udp", s.Addrs().UDP, 8},
		{"udp", s.Addrs().UDP, 1400},
	} {
		res, err := RunRR(testContext(t), RRConfig{Target: tc.target, Proto: tc.proto,
			Count: 200, Size: tc.size, Warmup: 5})
		if err != nil {
			t.Fatalf("%s/%d: %v", tc.proto, tc.size, err)
		}
		if res.Count != 200 || res.OK != 200 || res.Errors != 0 || res.Samples != 200 {
			t.Fatalf("%s/%d: counts %+v", tc.proto, tc.size, res)
		}
		if res.MinUs <= 0 || res.P50Us < res.MinUs || res.MaxUs < res.P999Us ||
			res.P999Us < res.P99Us || res.P99Us < res.P90Us || res.P90Us < res.P50Us {
			t.Fatalf("%s/%d: percentiles not ordered: %+v", tc.proto, tc.size, res.Latency)
		}
		if res.Histogram == "" {
			t.Fatalf("%s/%d: no encoded histogram", tc.proto, tc.size)
		}
	}
}

func TestRunRRTCPRequestLargerThanSocketBuffers(t *testing.T) {
	s := startLoopback(t)
	res, err := RunRR(testContext(t), RRConfig{Target: s.Addrs().TCP, Count: 3,
		Size: MaxTCPSize, Timeout: testDeadline})
	if err != nil || res.OK != 3 || res.Errors != 0 {
		t.Fatalf("16 MiB requests: %+v, %v", res, err)
	}
}

func TestRunRRWarmupErrorsAreNotCounted(t *testing.T) {
	target := lossyUDP(t, 2)
	res, err := RunRR(testContext(t), RRConfig{Target: target, Proto: "udp", Count: 4,
		Warmup: 4, Timeout: 20 * time.Millisecond})
	if err != nil || res.Count != 4 || res.Errors != 2 {
		t.Fatalf("want 4 measured requests with 2 lost; got %+v, %v", res, err)
	}
}

// lossyUDP echoes datagrams except every drop-th one, and sends a stale copy of the previous
// reply before each answer so the client has to discard it.
func lossyUDP(t *testing.T, drop int) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		var prev []byte
		for i := 1; ; i++ {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if i%drop == 0 {
				continue
			}
			if prev != nil {
				_, _ = c.WriteToUDPAddrPort(prev, from)
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
			prev = append(prev[:0], buf[:n]...)
		}
	}()
	return c.LocalAddr().String()
}

func TestRunRRUDPCountsLossAndDiscardsStaleReplies(t *testing.T) {
	target := lossyUDP(t, 3)
	res, err := RunRR(testContext(t), RRConfig{Target: target, Proto: "udp", Count: 30,
		Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("rr: %v", err)
	}
	if res.Count != 30 || res.Errors != 10 || res.OK != 20 ||
		res.ErrorKinds[KindTimeout] != 10 {
		t.Fatalf("want 30 sent, 10 lost as timeouts, 20 ok; got %+v", res)
	}
	if res.Discarded < 19 {
		t.Fatalf("discarded = %d, want >= 19 stale replies", res.Discarded)
	}
	if res.Samples != 20 {
		t.Fatalf("samples = %d, want 20", res.Samples)
	}
}

func TestRunRRTCPReconnectsAfterServerCloses(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// Each connection answers two requests of 8 bytes, then closes.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8)
				for range 2 {
					if _, err := readFull(c, buf); err != nil {
						return
					}
					_, _ = c.Write(buf)
				}
			}()
		}
	}()
	res, err := RunRR(testContext(t), RRConfig{Target: l.Addr().String(), Count: 9, Size: 8})
	if err != nil {
		t.Fatalf("rr: %v", err)
	}
	if res.OK != 6 || res.Errors != 3 || res.Reconnects != 3 {
		t.Fatalf("want 6 ok, 3 errors, 3 reconnects; got %+v", res)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestRunRRDurationAndPacing(t *testing.T) {
	s := startLoopback(t)
	res, err := RunRR(testContext(t), RRConfig{Target: s.Addrs().UDP, Proto: "udp",
		Duration: 100 * time.Millisecond, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatalf("rr: %v", err)
	}
	// 100ms at one request per 5ms is at most 21 requests.
	if res.Count < 1 || res.Count > 21 || !res.CoCorrected || res.IntervalUs != 5000 {
		t.Fatalf("unexpected paced result %+v", res)
	}
	if res.DurationS < 0.1 {
		t.Fatalf("duration %.3fs shorter than asked", res.DurationS)
	}
}

func TestRunRRStopsOnCancel(t *testing.T) {
	// A silent UDP socket: every request waits for its timeout until ctx ends the run.
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = RunRR(ctx, RRConfig{Target: c.LocalAddr().String(), Proto: "udp", Count: 5,
		Timeout: time.Minute})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > testDeadline {
		t.Fatalf("cancel took %v", el)
	}
}

func TestRunRRRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RRConfig
		want string
	}{
		{"proto", RRConfig{Target: "127.0.0.1:1", Proto: "sctp"}, "unknown protocol"},
		{"udp size", RRConfig{Target: "127.0.0.1:1", Proto: "udp", Size: 4}, "udp size"},
		{"tcp size", RRConfig{Target: "127.0.0.1:1", Size: -1}, "tcp size"},
		{"target", RRConfig{Target: "127.0.0.1"}, "parse target"},
		{"negative", RRConfig{Target: "127.0.0.1:1", Count: -1}, "negative"},
		{"wait modes", RRConfig{Target: "127.0.0.1:1", BusyPoll: true, Poller: true},
			"exclusive"},
	} {
		_, err := RunRR(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRunRRFailsWhenFirstDialIsRefused(t *testing.T) {
	_, err := RunRR(testContext(t), RRConfig{Target: closedPort(t, "tcp")})
	if Classify(err) != KindRefused {
		t.Fatalf("err = %v, want refused", err)
	}
}

func TestUDPSequenceIsInPayload(t *testing.T) {
	s := startLoopback(t)
	c, err := dialRR(testContext(t), RRConfig{Target: s.Addrs().UDP, Proto: "udp", Size: 16,
		Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for want := uint64(1); want <= 3; want++ {
		if _, err := c.roundTrip(); err != nil {
			t.Fatal(err)
		}
		if got := binary.BigEndian.Uint64(c.rbuf); got != want {
			t.Fatalf("reply seq = %d, want %d", got, want)
		}
	}
}
