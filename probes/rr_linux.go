//go:build linux && !386

package probes

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"syscall"
	"time"
)

// newRRIO takes conn over for blocking system calls (sockIO) unless cfg asks for the poller.
func newRRIO(conn net.Conn, cfg RRConfig) (rrIO, error) {
	if cfg.Poller {
		return pollIO{conn}, nil
	}
	sc, ok := conn.(interface {
		syscall.Conn
		io.Closer
	})
	if !ok {
		return nil, fmt.Errorf("take over %T: not a socket", conn)
	}
	s, err := takeOver(sc)
	if err != nil {
		return nil, err
	}
	if err := s.setTimeouts(cfg.Timeout); err != nil {
		s.close()
		return nil, err
	}
	_, isUDP := conn.(*net.UDPConn)
	return &sockIO{s: s, stream: !isUDP, busy: cfg.BusyPoll, timeout: cfg.Timeout,
		rcvTimeo: cfg.Timeout}, nil
}

// sockIO is the Linux rrIO: blocking recv and send on a socket taken out of the poller, so
// a reply wakes the measuring thread directly. SO_RCVTIMEO and SO_SNDTIMEO (the request
// timeout) bound each blocked call; a read after the first one of a request, such as after a
// discarded stale datagram or a partial TCP echo, waits only for what is left until the
// request's deadline.
type sockIO struct {
	s        *blockSock
	stream   bool
	busy     bool
	timeout  time.Duration
	deadline time.Time
	rcvTimeo time.Duration // current SO_RCVTIMEO
	reads    int           // reads in the current request
}

func (x *sockIO) begin(deadline time.Time) error {
	x.deadline, x.reads = deadline, 0
	if x.rcvTimeo == x.timeout {
		return nil
	}
	x.rcvTimeo = x.timeout
	return x.s.setRecvTimeout(x.timeout)
}

func (x *sockIO) write(b []byte) error { return x.s.send(b) }

func (x *sockIO) read(b []byte) (int, error) {
	var n int
	var err error
	if x.busy {
		n, err = x.spin(b)
	} else {
		n, err = x.sleep(b)
	}
	if n == 0 && err == nil && x.stream && len(b) > 0 {
		return 0, io.EOF
	}
	return n, err
}

// sleep waits in recv. The first read of a request keeps the full SO_RCVTIMEO, which the
// time spent sending exceeds the deadline by at most; later ones shrink it to what is left,
// to a millisecond, so that a trickle of data cannot stretch the request.
func (x *sockIO) sleep(b []byte) (int, error) {
	if x.reads > 0 {
		left := time.Until(x.deadline)
		if left <= 0 {
			return 0, errTimedOut
		}
		if left < x.rcvTimeo-time.Millisecond {
			if err := x.s.setRecvTimeout(left); err != nil {
				return 0, err
			}
			x.rcvTimeo = left
		}
	}
	x.reads++
	return x.s.recv(b, false)
}

// spinYield is how many empty polls a spinning read makes between yields. The spin never
// blocks, so without them a process with one P (GOMAXPROCS=1, or an in-process echo
// server) would run nothing else until the runtime preempts it after 10ms.
const spinYield = 128

// spin polls with non-blocking recv until data arrives or the deadline passes.
func (x *sockIO) spin(b []byte) (int, error) {
	for i := 1; ; i++ {
		n, err := x.s.recv(b, true)
		if err != syscall.EAGAIN {
			return n, err
		}
		if !time.Now().Before(x.deadline) {
			return 0, errTimedOut
		}
		if i%spinYield == 0 {
			runtime.Gosched()
		}
	}
}

func (x *sockIO) interrupt() { x.s.shutdown() }

func (x *sockIO) Close() error { return x.s.close() }
