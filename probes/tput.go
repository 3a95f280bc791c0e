package probes

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// TputConfig configures a TCP bulk-transfer run against a `probe serve` sink.
type TputConfig struct {
	Target   string        // host:port of the sink
	Duration time.Duration // how long to send (default 5s)
	Timeout  time.Duration // dial timeout and wait for the sink's receipt (default 5s)
	BufSize  int           // bytes per write (default 128 KiB)
}

// TputResult reports bytes the sink confirmed and the rate over the whole transfer, from the
// first write to the sink's receipt.
type TputResult struct {
	Target      string  `json:"target"`
	SentBytes   int64   `json:"sent_bytes"`
	Bytes       int64   `json:"bytes"` // received, as confirmed by the sink
	DurationS   float64 `json:"duration_s"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	BitsPerSec  float64 `json:"bits_per_sec"`
}

// RunTput streams data to a sink over one TCP connection for cfg.Duration, half-closes, and
// waits for the sink's 8-byte count of the bytes it received.
func RunTput(ctx context.Context, cfg TputConfig) (TputResult, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.BufSize <= 0 {
		cfg.BufSize = 128 << 10
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.Target)
	if err != nil {
		return TputResult{}, fmt.Errorf("tput: dial sink %s: %w", cfg.Target, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	res := TputResult{Target: cfg.Target}
	start := time.Now()
	if res.SentBytes, err = sendFor(conn, cfg.Duration, cfg.BufSize); err != nil {
		return res, fmt.Errorf("tput: send to %s: %w", cfg.Target, err)
	}
	if res.Bytes, err = awaitReceipt(conn.(*net.TCPConn), cfg.Timeout); err != nil {
		return res, fmt.Errorf("tput: receipt from %s: %w", cfg.Target, err)
	}
	el := time.Since(start)
	res.DurationS = el.Seconds()
	res.BytesPerSec = float64(res.Bytes) / el.Seconds()
	res.BitsPerSec = 8 * res.BytesPerSec
	return res, nil
}

func sendFor(conn net.Conn, d time.Duration, bufSize int) (int64, error) {
	buf := make([]byte, bufSize)
	end := time.Now().Add(d)
	if err := conn.SetWriteDeadline(end); err != nil {
		return 0, err
	}
	var sent int64
	for time.Now().Before(end) {
		n, err := conn.Write(buf)
		sent += int64(n)
		if err != nil {
			if Classify(err) == KindTimeout && !time.Now().Before(end) {
				break
			}
			return sent, err
		}
	}
	return sent, conn.SetWriteDeadline(time.Time{})
}

func awaitReceipt(conn *net.TCPConn, timeout time.Duration) (int64, error) {
	if err := conn.CloseWrite(); err != nil {
		return 0, err
	}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	var b [8]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b[:])), nil
}
