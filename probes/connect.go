package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// ErrorKind names why a probe could not reach its target.
type ErrorKind string

// Error kinds reported by Connect and counted by RunRR.
const (
	KindNone        ErrorKind = ""
	KindRefused     ErrorKind = "refused"     // RST or ICMP port unreachable
	KindTimeout     ErrorKind = "timeout"     // no answer within the timeout
	KindUnreachable ErrorKind = "unreachable" // ICMP host/net unreachable, no route
	KindOther       ErrorKind = "other"
)

// Classify maps a dial, read or write error to an ErrorKind. A nil error is KindNone.
func Classify(err error) ErrorKind {
	switch {
	case err == nil:
		return KindNone
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return KindRefused
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT):
		return KindTimeout
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return KindUnreachable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout
	}
	return KindOther
}

// ConnectConfig selects the target of Connect.
type ConnectConfig struct {
	Target  string        // host:port
	Proto   string        // "tcp" (default) or "udp"
	Timeout time.Duration // default 2s
}

// ConnectResult is the outcome of one Connect. A failed connect is a result, not an error.
type ConnectResult struct {
	Target string    `json:"target"`
	Proto  string    `json:"proto"`
	OK     bool      `json:"ok"`
	Kind   ErrorKind `json:"error_kind,omitempty"`
	Error  string    `json:"error,omitempty"`
	Ms     float64   `json:"ms"`
}

// connectPayload is what a UDP connect sends; any echo server returns it.
var connectPayload = []byte("hybridlab-probe-connect")

// Connect opens a TCP connection to cfg.Target and closes it, or for UDP sends one datagram and
// waits for its echo (as `probe serve` answers). It returns an error only for a bad
// configuration; unreachable targets are reported in the result.
func Connect(ctx context.Context, cfg ConnectConfig) (ConnectResult, error) {
	if cfg.Proto == "" {
		cfg.Proto = "tcp"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Proto != "tcp" && cfg.Proto != "udp" {
		return ConnectResult{}, fmt.Errorf("connect %q: unknown protocol %q", cfg.Target, cfg.Proto)
	}
	if _, _, err := net.SplitHostPort(cfg.Target); err != nil {
		return ConnectResult{}, fmt.Errorf("connect: parse target %q: %w", cfg.Target, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	start := time.Now()
	err := connectOnce(ctx, cfg.Proto, cfg.Target)
	res := ConnectResult{
		Target: cfg.Target,
		Proto:  cfg.Proto,
		OK:     err == nil,
		Kind:   Classify(err),
		Ms:     float64(time.Since(start).Microseconds()) / 1e3,
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res, nil
}

func connectOnce(ctx context.Context, proto, target string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, proto, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	if proto == "tcp" {
		return nil
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.Write(connectPayload); err != nil {
		return err
	}
	buf := make([]byte, 2*len(connectPayload))
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != string(connectPayload) {
		return fmt.Errorf("udp echo from %s: unexpected reply of %d bytes", target, n)
	}
	return nil
}
