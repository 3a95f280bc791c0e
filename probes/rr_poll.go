package probes

import (
	"net"
	"time"
)

// pollIO is the portable rrIO: a net.Conn whose reads park the goroutine in the runtime's
// network poller until epoll reports the socket readable.
type pollIO struct{ conn net.Conn }

func (p pollIO) begin(deadline time.Time) error { return p.conn.SetDeadline(deadline) }

func (p pollIO) write(b []byte) error {
	_, err := p.conn.Write(b)
	return err
}

func (p pollIO) read(b []byte) (int, error) { return p.conn.Read(b) }

func (p pollIO) interrupt() { _ = p.conn.SetDeadline(time.Unix(1, 0)) }

func (p pollIO) Close() error { return p.conn.Close() }
