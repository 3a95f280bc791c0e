package probes

import (
	"context"
	"net"
	"testing"
	"time"
)

// testDeadline bounds every blocking step of a test.
const testDeadline = 5 * time.Second

// startLoopback starts TCP, UDP, sink and HTTP listeners on 127.0.0.1 ephemeral ports and
// stops them when the test ends.
func startLoopback(t testing.TB) *Server {
	t.Helper()
	s, err := Start(ServeConfig{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0", Sink: "127.0.0.1:0",
		HTTP: "127.0.0.1:0", Hostname: "probe-test"})
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

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

// closedPort returns a 127.0.0.1 address where nothing listens (the port was just released).
func closedPort(t testing.TB, proto string) string {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := c.LocalAddr().String()
		c.Close()
		return addr
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
