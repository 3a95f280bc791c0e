package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestConnectTCP(t *testing.T) {
	s := startLoopback(t)
	ok, err := Connect(testContext(t), ConnectConfig{Target: s.Addrs().TCP})
	if err != nil || !ok.OK || ok.Kind != KindNone || ok.Proto != "tcp" {
		t.Fatalf("connect to echo: %+v, %v", ok, err)
	}
	refused, err := Connect(testContext(t), ConnectConfig{Target: closedPort(t, "tcp")})
	if err != nil || refused.OK || refused.Kind != KindRefused || refused.Error == "" {
		t.Fatalf("connect to closed port: %+v, %v", refused, err)
	}
}

// fullBacklog returns a 127.0.0.1 TCP address whose listener never accepts and has a backlog
// of 0, so once its accept queue is full the kernel drops further SYNs and connects time out.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

func TestConnectTCPTimeoutWhenSynsAreDropped(t *testing.T) {
	target := fullBacklog(t)
	for range 8 {
		res, err := Connect(testContext(t), ConnectConfig{Target: target,
			Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Kind == KindTimeout {
			if res.Ms < 290 {
				t.Fatalf("timed out after %.1fms, before the 300ms timeout", res.Ms)
			}
			return
		}
		// A connection that completed stays in the accept queue after the client closes
		// it (the listener never accepts), so each success fills the queue further.
		if !res.OK {
			t.Fatalf("connect failed with %+v before the backlog filled", res)
		}
	}
	t.Fatal("no connect timed out against a full accept queue")
}

func TestConnectUDP(t *testing.T) {
	s := startLoopback(t)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, tc := range []struct {
		target string
		ok     bool
		kind   ErrorKind
	}{
		{s.Addrs().UDP, true, KindNone},
		{closedPort(t, "udp"), false, KindRefused},
		{silent.LocalAddr().String(), false, KindTimeout},
	} {
		res, err := Connect(testContext(t), ConnectConfig{Target: tc.target, Proto: "udp",
			Timeout: 200 * time.Millisecond})
		if err != nil || res.OK != tc.ok || res.Kind != tc.kind {
			t.Errorf("udp %s: %+v, %v; want ok=%v kind=%q", tc.target, res, err, tc.ok, tc.kind)
		}
	}
}

func TestConnectRejectsBadConfig(t *testing.T) {
	if _, err := Connect(context.Background(), ConnectConfig{Target: "x"}); err == nil {
		t.Error("target without port accepted")
	}
	if _, err := Connect(context.Background(), ConnectConfig{Target: "127.0.0.1:1",
		Proto: "icmp"}); err == nil {
		t.Error("unknown protocol accepted")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want ErrorKind
	}{
		{nil, KindNone},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
			KindRefused},
		{&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, KindTimeout},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), KindTimeout},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)},
			KindUnreachable},
		{&net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)},
			KindUnreachable},
		{errors.New("boom"), KindOther},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
