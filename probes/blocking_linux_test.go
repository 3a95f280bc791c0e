//go:build linux && !386

package probes

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// startLoopbackMode is startLoopback with the echoes served by blocking calls or, with
// poller, through the runtime's poller.
func startLoopbackMode(t testing.TB, poller bool, maxBlocking int32) *Server {
	t.Helper()
	s, err := Start(ServeConfig{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0",
		Poller: poller, maxBlocking: maxBlocking})
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	return s
}

var ioModes = []struct {
	name         string
	poller, busy bool
	serverPolled bool
}{
	{name: "blocking"},
	{name: "busy-poll", busy: true},
	{name: "poller", poller: true, serverPolled: true},
	{name: "blocking-to-polled-server", serverPolled: true},
}

func TestRunRRInEveryIOMode(t *testing.T) {
	for _, m := range ioModes {
		s := startLoopbackMode(t, m.serverPolled, 0)
		for _, proto := range []string{"tcp", "udp"} {
			target := s.Addrs().TCP
			if proto == "udp" {
				target = s.Addrs().UDP
			}
			res, err := RunRR(testContext(t), RRConfig{Target: target, Proto: proto,
				Count: 300, Warmup: 10, BusyPoll: m.busy, Poller: m.poller})
			if err != nil {
				t.Fatalf("%s %s: %v", m.name, proto, err)
			}
			if res.OK != 300 || res.Errors != 0 || res.Samples != 300 || res.BusyPoll != m.busy {
				t.Fatalf("%s %s: %+v", m.name, proto, res)
			}
		}
	}
}

func TestRunRRUDPLossInEveryIOMode(t *testing.T) {
	for _, m := range ioModes {
		target := lossyUDP(t, 3)
		res, err := RunRR(testContext(t), RRConfig{Target: target, Proto: "udp", Count: 12,
			Timeout: 30 * time.Millisecond, BusyPoll: m.busy, Poller: m.poller})
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if res.OK != 8 || res.ErrorKinds[KindTimeout] != 4 || res.Discarded < 7 {
			t.Fatalf("%s: want 8 ok, 4 timeouts, >= 7 discarded; got %+v", m.name, res)
		}
	}
}

func TestRunRRStopsOnCancelInEveryIOMode(t *testing.T) {
	for _, m := range ioModes {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err = RunRR(ctx, RRConfig{Target: c.LocalAddr().String(), Proto: "udp", Count: 5,
			Timeout: time.Minute, BusyPoll: m.busy, Poller: m.poller})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: err = %v, want deadline exceeded", m.name, err)
		}
	}
}

// staleUDP answers every datagram with a stream of replies that never carry the request's
// sequence number, one every 5ms, until the test ends.
func staleUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		clear(buf[:8])
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if _, err := c.WriteToUDPAddrPort(buf[:n], from); err != nil {
				return
			}
		}
	}()
	return c.LocalAddr().String()
}

// A stream of stale replies must not keep a request alive past its timeout, although each
// one ends a blocked recv before SO_RCVTIMEO would.
func TestRunRRStaleRepliesDoNotStretchTheTimeout(t *testing.T) {
	res, err := RunRR(testContext(t), RRConfig{Target: staleUDP(t), Proto: "udp", Count: 1,
		Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("rr: %v", err)
	}
	if res.Errors != 1 || res.ErrorKinds[KindTimeout] != 1 || res.Discarded < 2 {
		t.Fatalf("want one timeout after discarding stale replies; got %+v", res)
	}
}

func TestBlockingTimeoutIsADeadlineError(t *testing.T) {
	if !errors.Is(errTimedOut, os.ErrDeadlineExceeded) || Classify(errTimedOut) != KindTimeout {
		t.Fatalf("errTimedOut = %v, classified %q", errTimedOut, Classify(errTimedOut))
	}
}

// sockopt reads an int socket option of a blocking socket.
func sockopt(t *testing.T, s *blockSock, level, opt int) int {
	t.Helper()
	v, err := syscall.GetsockoptInt(s.fd, level, opt)
	if err != nil {
		t.Fatalf("getsockopt %d/%d: %v", level, opt, err)
	}
	return v
}

func TestTakeOverKeepsNoDelayAndBlocks(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialed, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]net.Conn{"dialled": dialed, "accepted": accepted} {
		s, err := takeOver(c.(*net.TCPConn))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer s.close()
		if sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_NODELAY) == 0 {
			t.Errorf("%s: TCP_NODELAY is off", name)
		}
		fl, err := getFlags(s.fd)
		if err != nil || fl&syscall.O_NONBLOCK != 0 {
			t.Errorf("%s: flags %#x, %v: want blocking", name, fl, err)
		}
	}
}

func getFlags(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func TestCloseStopsIdleBlockingEchoes(t *testing.T) {
	s, err := Start(ServeConfig{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", s.Addrs().TCP, testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testDeadline))
	echoOnce(t, conn)
	if got := s.blocking.Load(); got != 1 {
		t.Fatalf("blocking echoes = %d, want 1", got)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Close did not return while an echo connection was idle")
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("client read after server close: %v, want EOF", err)
	}
}

func echoOnce(t *testing.T, conn net.Conn) {
	t.Helper()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q: %v", buf, err)
	}
}

func TestEchoesBeyondTheThreadLimitUseThePoller(t *testing.T) {
	s := startLoopbackMode(t, false, 2)
	for i := 0; i < 4; i++ {
		conn, err := net.DialTimeout("tcp", s.Addrs().TCP, testDeadline)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(testDeadline))
		echoOnce(t, conn)
	}
	if got := s.blocking.Load(); got != 2 {
		t.Fatalf("blocking echoes = %d, want the limit 2", got)
	}
}

// TestRoundTripDoesNotAllocateInEveryIOMode extends TestRoundTripDoesNotAllocate to busy
// polling and the poller on both ends.
func TestRoundTripDoesNotAllocateInEveryIOMode(t *testing.T) {
	for _, m := range ioModes {
		s := startLoopbackMode(t, m.serverPolled, 0)
		for _, proto := range []string{"tcp", "udp"} {
			c := benchConnWith(t, s, RRConfig{Proto: proto, BusyPoll: m.busy, Poller: m.poller})
			h := NewHistogram()
			allocs := testing.AllocsPerRun(500, func() {
				rtt, err := c.roundTrip()
				if err != nil {
					t.Fatal(err)
				}
				recordNs(h, rtt, 0)
			})
			if allocs != 0 {
				t.Errorf("%s %s: %.2f allocations per request, want 0", m.name, proto, allocs)
			}
		}
	}
}

// The poller variants show what blocking calls save; compare with BenchmarkRRTCP/UDP.
func BenchmarkRRTCPPoller(b *testing.B) {
	s := startLoopbackMode(b, true, 0)
	benchLoop(b, benchConnWith(b, s, RRConfig{Proto: "tcp", Poller: true}))
}

func BenchmarkRRUDPPoller(b *testing.B) {
	s := startLoopbackMode(b, true, 0)
	benchLoop(b, benchConnWith(b, s, RRConfig{Proto: "udp", Poller: true}))
}
