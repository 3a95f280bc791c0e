package probes

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestTCPEchoPreservesLengthAndContent(t *testing.T) {
	s := startLoopback(t)
	conn, err := net.DialTimeout("tcp", s.Addrs().TCP, testDeadline)
	if err != nil {
		t.Fatalf("dial echo: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testDeadline))

	for _, size := range []int{1, 64, 1500, 65536, 300000} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i * 7)
		}
		go func() { _, _ = conn.Write(msg) }()
		got := make([]byte, size)
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatalf("size %d: read echo: %v", size, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("size %d: echo differs from request", size)
		}
	}
}

func TestUDPEchoReturnsEachDatagram(t *testing.T) {
	s := startLoopback(t)
	conn, err := net.Dial("udp", s.Addrs().UDP)
	if err != nil {
		t.Fatalf("dial udp echo: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testDeadline))

	for _, size := range []int{1, 8, 1400, 9000} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := conn.Write(msg); err != nil {
			t.Fatalf("size %d: send: %v", size, err)
		}
		got := make([]byte, 65536)
		n, err := conn.Read(got)
		if err != nil {
			t.Fatalf("size %d: read: %v", size, err)
		}
		if !bytes.Equal(got[:n], msg) {
			t.Fatalf("size %d: got %d bytes back", size, n)
		}
	}
}

func TestSinkReportsReceivedBytes(t *testing.T) {
	s := startLoopback(t)
	conn, err := net.Dial("tcp", s.Addrs().Sink)
	if err != nil {
		t.Fatalf("dial sink: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testDeadline))
	if _, err := conn.Write(make([]byte, 123457)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	var b [8]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		t.Fatalf("read receipt: %v", err)
	}
	if got := binary.BigEndian.Uint64(b[:]); got != 123457 {
		t.Fatalf("receipt = %d, want 123457", got)
	}
}

func TestRunTputReportsConfirmedBytes(t *testing.T) {
	s := startLoopback(t)
	res, err := RunTput(testContext(t), TputConfig{Target: s.Addrs().Sink,
		Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("tput: %v", err)
	}
	if res.Bytes <= 0 || res.Bytes != res.SentBytes || res.BytesPerSec <= 0 {
		t.Fatalf("unexpected result %+v", res)
	}
}

func httpGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	c := http.Client{Timeout: testDeadline}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("get %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", u, err)
	}
	return resp.StatusCode, body
}

func TestHTTPRootReportsHostnameAndRemote(t *testing.T) {
	s := startLoopback(t)
	code, body := httpGet(t, "http://"+s.Addrs().HTTP+"/")
	var info HTTPInfo
	if err := json.Unmarshal(body, &info); err != nil || code != http.StatusOK {
		t.Fatalf("status %d body %q: %v", code, body, err)
	}
	if info.Hostname != "probe-test" || !strings.HasPrefix(info.Remote, "127.0.0.1:") ||
		info.Local != s.Addrs().HTTP {
		t.Fatalf("unexpected info %+v", info)
	}
	code, body = httpGet(t, "http://"+s.Addrs().HTTP+"/healthz")
	if code != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
}

func TestHTTPCallRelaysBackend(t *testing.T) {
	web := startLoopback(t)
	backend := startLoopback(t)
	call := func(target string) (int, []byte) {
		return httpGet(t, "http://"+web.Addrs().HTTP+"/call?url="+url.QueryEscape(target))
	}

	code, body := call("http://" + backend.Addrs().HTTP + "/data")
	var info HTTPInfo
	if err := json.Unmarshal(body, &info); err != nil || code != http.StatusOK {
		t.Fatalf("call backend: status %d body %q: %v", code, body, err)
	}
	if info.Path != "/data" || info.Local != backend.Addrs().HTTP {
		t.Fatalf("backend info %+v", info)
	}

	code, body = call("http://" + closedPort(t, "tcp") + "/")
	var ce CallError
	if err := json.Unmarshal(body, &ce); err != nil || code != http.StatusBadGateway ||
		ce.Kind != KindRefused {
		t.Fatalf("call closed port: status %d body %q", code, body)
	}

	code, _ = call("file:///etc/passwd")
	if code != http.StatusBadRequest {
		t.Fatalf("call non-http URL: status %d, want 400", code)
	}
}

func TestStartFailsOnBusyPortAndLeavesNothing(t *testing.T) {
	s := startLoopback(t)
	_, err := Start(ServeConfig{UDP: "127.0.0.1:0", TCP: s.Addrs().TCP})
	if err == nil || !strings.Contains(err.Error(), "listen tcp echo") {
		t.Fatalf("start on busy port: err = %v", err)
	}
}
