package probes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Payload limits of RunRR. A UDP request carries its 8-byte sequence number.
const (
	MinUDPSize  = 8
	MaxUDPSize  = 65507
	MaxTCPSize  = 16 << 20
	DefaultSize = 64
)

// ErrNoEcho is returned when a reply does not match the request it answers.
var ErrNoEcho = errors.New("reply is not an echo of the request")

// RRConfig configures a request-response latency run against a `probe serve` echo.
type RRConfig struct {
	Target   string        // host:port of the echo server
	Proto    string        // "tcp" (default) or "udp"
	Count    int           // measured requests; default 1000 when Duration is 0
	Duration time.Duration // run for this long instead of Count
	Size     int           // payload bytes per request (default 64; UDP at least 8)
	// Interval paces requests: one is sent every Interval and latencies are recorded with
	// coordinated-omission correction. 0 sends back-to-back (hot mode).
	Interval time.Duration
	Warmup   int           // unrecorded requests sent first
	Timeout  time.Duration // per request and for the dial (default 1s)
	// BusyPoll waits for replies by spinning on non-blocking reads instead of sleeping in the
	// kernel. It keeps one CPU busy for the whole run and is Linux-only.
	BusyPoll bool
	// Poller waits through the Go runtime's network poller (epoll) instead of blocking system
	// calls, as on non-Linux builds. It is slower (about 1.5× sockperf's p50 on a veth pair)
	// but steadier when client and echo server run in one process, where blocking threads
	// may be placed on different CPUs for a whole run.
	Poller bool
}

// RRResult is the outcome of RunRR. Latencies are in microseconds; Samples counts recorded
// values, which in paced mode includes the synthetic values of the omission correction.
type RRResult struct {
	Target      string              `json:"target"`
	Proto       string              `json:"proto"`
	Size        int                 `json:"size"`
	Count       int64               `json:"count"`
	OK          int64               `json:"ok"`
	Errors      int64               `json:"errors"`
	ErrorKinds  map[ErrorKind]int64 `json:"error_kinds,omitempty"`
	Discarded   int64               `json:"discarded"` // late or out-of-order UDP replies
	Reconnects  int64               `json:"reconnects"`
	BusyPoll    bool                `json:"busy_poll,omitempty"`
	Poller      bool                `json:"poller,omitempty"`
	DurationS   float64             `json:"duration_s"`
	IntervalUs  float64             `json:"interval_us"`
	CoCorrected bool                `json:"co_corrected"`
	Latency
	// Histogram is the run's HdrHistogram (ns, V2 compressed, base64); merge runs with
	// MergeHistograms.
	Histogram string `json:"histogram,omitempty"`
}

func (cfg *RRConfig) normalize() error {
	if cfg.Proto == "" {
		cfg.Proto = "tcp"
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Count == 0 && cfg.Duration == 0 {
		cfg.Count = 1000
	}
	switch {
	case cfg.Proto != "tcp" && cfg.Proto != "udp":
		return fmt.Errorf("unknown protocol %q (want tcp or udp)", cfg.Proto)
	case cfg.Proto == "udp" && (cfg.Size < MinUDPSize || cfg.Size > MaxUDPSize):
		return fmt.Errorf("udp size %d out of range %d..%d", cfg.Size, MinUDPSize, MaxUDPSize)
	case cfg.Proto == "tcp" && (cfg.Size < 1 || cfg.Size > MaxTCPSize):
		return fmt.Errorf("tcp size %d out of range 1..%d", cfg.Size, MaxTCPSize)
	case cfg.Count < 0 || cfg.Duration < 0 || cfg.Warmup < 0 || cfg.Interval < 0:
		return errors.New("count, duration, warmup and interval must not be negative")
	case cfg.BusyPoll && cfg.Poller:
		return errors.New("busy polling and the runtime poller are exclusive")
	}
	if _, _, err := net.SplitHostPort(cfg.Target); err != nil {
		return fmt.Errorf("parse target %q: %w", cfg.Target, err)
	}
	return nil
}

// RunRR measures request-response latency against an echo server: over one TCP connection
// (re-dialled after a failure) or a connected UDP socket, it writes Size bytes and waits for
// the whole echo, Count times or for Duration. It returns an error if the configuration is
// invalid or the first dial fails; request failures are counted in the result. When ctx is
// cancelled it returns the partial result together with ctx's error.
//
// On Linux the socket leaves the runtime's poller and the calling goroutine waits in blocking
// system calls (or spins, with BusyPoll), yielding to the scheduler every few milliseconds.
// Dials happen on the calling goroutine, so a caller that locked its thread into a network
// namespace keeps re-dials there; such a caller pays a thread hand-off at each yield.
func RunRR(ctx context.Context, cfg RRConfig) (RRResult, error) {
	if err := cfg.normalize(); err != nil {
		return RRResult{}, fmt.Errorf("rr %s: %w", cfg.Target, err)
	}
	c, err := dialRR(ctx, cfg)
	if err != nil {
		return RRResult{}, fmt.Errorf("rr %s: %w", cfg.Target, err)
	}
	defer func() { c.Close() }()
	res := RRResult{Target: cfg.Target, Proto: cfg.Proto, Size: cfg.Size,
		IntervalUs: float64(cfg.Interval) / 1e3, CoCorrected: cfg.Interval > 0,
		BusyPoll: cfg.BusyPoll, Poller: cfg.Poller}
	h := NewHistogram()
	r := &rrRun{cfg: cfg, c: c, h: h, res: &res}
	// Cancellation must also interrupt a request blocked in read.
	stop := context.AfterFunc(ctx, r.interrupt)
	defer stop()
	if err := r.warmup(ctx); err != nil {
		return res, err
	}
	start := time.Now()
	loopErr := r.measure(ctx, start)
	res.DurationS = time.Since(start).Seconds()
	res.Latency = Summarize(h)
	res.Discarded = c.discarded
	if res.Histogram, err = EncodeHistogram(h); err != nil {
		return res, err
	}
	return res, loopErr
}

// rrRun holds the state of one RunRR loop.
type rrRun struct {
	cfg RRConfig
	c   *rrConn
	h   *hdrhistogram.Histogram
	res *RRResult
	// swap guards replacing c's connection against interrupt, which runs on another
	// goroutine; the request path itself never takes it.
	swap sync.Mutex
}

func (r *rrRun) interrupt() {
	r.swap.Lock()
	defer r.swap.Unlock()
	r.c.interrupt()
}

func (r *rrRun) warmup(ctx context.Context) error {
	for i := 0; i < r.cfg.Warmup; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := r.c.roundTrip(); err != nil {
			if err := r.reconnect(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *rrRun) measure(ctx context.Context, start time.Time) error {
	end := start.Add(r.cfg.Duration)
	next := start
	for i := 0; r.cfg.Duration > 0 || i < r.cfg.Count; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.cfg.Interval > 0 {
			next = pace(next, r.cfg.Interval, i)
		}
		if r.cfg.Duration > 0 && !time.Now().Before(end) {
			return nil
		}
		r.res.Count++
		rtt, err := r.c.roundTrip()
		if err != nil {
			if ctx.Err() == nil {
				r.countError(err)
			}
			if err := r.reconnect(ctx); err != nil {
				return err
			}
			continue
		}
		r.res.OK++
		recordNs(r.h, rtt, r.cfg.Interval)
	}
	return nil
}

// pace waits until the i-th intended send time and returns it. A sender that has fallen
// behind starts a new schedule from now instead of bursting; the omission correction
// accounts for the requests it could not send.
func pace(next time.Time, interval time.Duration, i int) time.Time {
	if i == 0 {
		return next
	}
	next = next.Add(interval)
	wait := time.Until(next)
	if wait < 0 {
		return time.Now()
	}
	time.Sleep(wait)
	return next
}

func (r *rrRun) countError(err error) {
	r.res.Errors++
	if r.res.ErrorKinds == nil {
		r.res.ErrorKinds = map[ErrorKind]int64{}
	}
	r.res.ErrorKinds[Classify(err)]++
}

// reconnect re-dials a TCP connection after a failed request, because the stream may still
// hold a stale echo; UDP needs nothing. It returns an error only when ctx is done.
func (r *rrRun) reconnect(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.cfg.Proto != "tcp" {
		return nil
	}
	r.c.Close()
	nc, err := dialRR(ctx, r.cfg)
	if err != nil {
		// Keep the closed connection: the next request fails fast, is counted and dials again.
		return nil
	}
	r.res.Reconnects++
	nc.discarded = r.c.discarded
	r.swap.Lock()
	*r.c = *nc
	r.swap.Unlock()
	return nil
}

// concurrentWriteMin is the request size from which a TCP request is written by a helper
// goroutine while the echo is read: a request larger than the socket buffers on the path
// would otherwise block both ends (the server cannot echo while the client is not reading).
const concurrentWriteMin = 64 << 10

// rrConn is one request-response connection. roundTrip does not allocate.
type rrConn struct {
	io        rrIO
	udp       bool
	wbuf      []byte
	rbuf      []byte
	timeout   time.Duration
	seq       uint64
	discarded int64
	// wreq and wdone drive the writer goroutine of large TCP requests (nil otherwise);
	// writing is true while a request handed to it has not been confirmed on wdone.
	wreq    chan struct{}
	wdone   chan error
	writing bool
	y       yielder
}

// rrIO is the socket layer under rrConn. On Linux it makes blocking system calls on the
// socket (sockIO); elsewhere, or when asked, it goes through the runtime's poller (pollIO).
type rrIO interface {
	// begin starts a request that must be answered by deadline.
	begin(deadline time.Time) error
	// write sends all of b.
	write(b []byte) error
	// read returns at least one byte, or an error (io.EOF at the end of a stream); a UDP
	// read may return an empty datagram.
	read(b []byte) (int, error)
	// interrupt makes blocked and later calls fail; it may run on any goroutine.
	interrupt()
	Close() error
}

func dialRR(ctx context.Context, cfg RRConfig) (*rrConn, error) {
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, cfg.Proto, cfg.Target)
	if err != nil {
		return nil, err // net.OpError names the action and the address
	}
	rio, err := newRRIO(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s connection to %s: %w", cfg.Proto, cfg.Target, err)
	}
	c := &rrConn{io: rio, udp: cfg.Proto == "udp", timeout: cfg.Timeout,
		wbuf: make([]byte, cfg.Size), rbuf: make([]byte, cfg.Size+1)}
	for i := range c.wbuf {
		c.wbuf[i] = byte('a' + i%26)
	}
	if !c.udp && cfg.Size >= concurrentWriteMin {
		c.startWriter()
	}
	return c, nil
}

func (c *rrConn) startWriter() {
	c.wreq, c.wdone = make(chan struct{}), make(chan error, 1)
	go func(rio rrIO, buf []byte, req <-chan struct{}, done chan<- error) {
		for range req {
			done <- rio.write(buf)
		}
	}(c.io, c.wbuf, c.wreq, c.wdone)
}

// Close closes the connection and stops its writer goroutine, first unblocking a write still
// in flight. It is idempotent.
func (c *rrConn) Close() error {
	if c.writing {
		c.io.interrupt()
		<-c.wdone
		c.writing = false
	}
	if c.wreq != nil {
		close(c.wreq)
		c.wreq = nil
	}
	return c.io.Close()
}

func (c *rrConn) interrupt() { c.io.interrupt() }

// roundTrip sends one request and waits for its full echo, returning the round-trip time.
func (c *rrConn) roundTrip() (time.Duration, error) {
	c.seq++
	if c.udp {
		binary.BigEndian.PutUint64(c.wbuf, c.seq)
	}
	start := time.Now()
	if err := c.io.begin(start.Add(c.timeout)); err != nil {
		return 0, err
	}
	if c.wreq != nil {
		return c.concurrentRoundTrip(start)
	}
	if err := c.io.write(c.wbuf); err != nil {
		return 0, err
	}
	var err error
	if c.udp {
		err = c.readUDP()
	} else {
		err = c.readTCP()
	}
	end := time.Now()
	c.y.at(end)
	return end.Sub(start), err
}

func (c *rrConn) concurrentRoundTrip(start time.Time) (time.Duration, error) {
	c.wreq <- struct{}{}
	c.writing = true
	rerr := c.readTCP()
	rtt := time.Since(start)
	if rerr != nil {
		// The writer may still be blocked; the caller closes the connection, which frees it.
		return rtt, rerr
	}
	werr := <-c.wdone
	c.writing = false
	return rtt, werr
}

func (c *rrConn) readTCP() error {
	want := len(c.wbuf)
	for got := 0; got < want; {
		n, err := c.io.read(c.rbuf[got:want])
		got += n
		if err != nil {
			return err
		}
	}
	return nil
}

// readUDP reads until the reply to the current sequence number arrives; earlier replies
// (late or reordered) are discarded.
func (c *rrConn) readUDP() error {
	for {
		n, err := c.io.read(c.rbuf)
		if err != nil {
			return err
		}
		if n < MinUDPSize {
			c.discarded++
			continue
		}
		seq := binary.BigEndian.Uint64(c.rbuf)
		if seq != c.seq {
			c.discarded++
			continue
		}
		if n != len(c.wbuf) {
			return ErrNoEcho
		}
		return nil
	}
}
