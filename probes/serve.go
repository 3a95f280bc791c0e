package probes

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ServeConfig selects the listeners of Serve. An empty address disables that listener.
type ServeConfig struct {
	TCP  string // TCP echo, e.g. ":7000"
	UDP  string // UDP echo, e.g. ":7001"
	Sink string // TCP discard sink for RunTput, e.g. ":7002"
	HTTP string // HTTP server, e.g. ":8080"
	// CallTimeout bounds the outbound GET of the HTTP /call endpoint (default 2s).
	CallTimeout time.Duration
	// Hostname is reported by the HTTP / endpoint (default os.Hostname).
	Hostname string
	// Poller serves the TCP and UDP echoes through the Go runtime's network poller instead
	// of blocking system calls on threads of their own (see RRConfig.Poller).
	Poller bool

	// maxBlocking overrides maxBlockingEchoes when positive (tests).
	maxBlocking int32
}

// DefaultServeConfig is what `probe serve` listens on without flags.
func DefaultServeConfig() ServeConfig {
	return ServeConfig{TCP: ":7000", UDP: ":7001", Sink: ":7002", HTTP: ":8080",
		CallTimeout: 2 * time.Second}
}

// ServeAddrs holds the bound addresses of a Server (useful with port 0).
type ServeAddrs struct {
	TCP  string `json:"tcp,omitempty"`
	UDP  string `json:"udp,omitempty"`
	Sink string `json:"sink,omitempty"`
	HTTP string `json:"http,omitempty"`
}

// Server is a running set of probe listeners. Start binds them; Close stops them and waits
// for every connection handler to return.
type Server struct {
	cfg   ServeConfig
	addrs ServeAddrs
	tcp   net.Listener
	sink  net.Listener
	udp   *net.UDPConn
	http  *http.Server
	httpL net.Listener

	mu     sync.Mutex
	conns  map[any]func() // live connections and what stops each
	closed bool
	wg     sync.WaitGroup
	// blocking counts TCP echo connections served with blocking calls, each holding a thread.
	blocking atomic.Int32
}

// Start binds every configured listener in the caller's network namespace and serves them in
// background goroutines. On error nothing is left listening.
func Start(cfg ServeConfig) (*Server, error) {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	s := &Server{cfg: cfg, conns: map[any]func(){}}
	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	s.run()
	return s, nil
}

// Serve runs Start's listeners until ctx is done, then closes them. It returns nil after a
// clean shutdown.
func Serve(ctx context.Context, cfg ServeConfig) error {
	s, err := Start(cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Addrs returns the bound addresses.
func (s *Server) Addrs() ServeAddrs { return s.addrs }

func (s *Server) listen() error {
	var err error
	if s.cfg.TCP != "" {
		if s.tcp, err = net.Listen("tcp", s.cfg.TCP); err != nil {
			return fmt.Errorf("listen tcp echo %q: %w", s.cfg.TCP, err)
		}
		s.addrs.TCP = s.tcp.Addr().String()
	}
	if s.cfg.Sink != "" {
		if s.sink, err = net.Listen("tcp", s.cfg.Sink); err != nil {
			return fmt.Errorf("listen tcp sink %q: %w", s.cfg.Sink, err)
		}
		s.addrs.Sink = s.sink.Addr().String()
	}
	if s.cfg.HTTP != "" {
		if s.httpL, err = net.Listen("tcp", s.cfg.HTTP); err != nil {
			return fmt.Errorf("listen http %q: %w", s.cfg.HTTP, err)
		}
		s.addrs.HTTP = s.httpL.Addr().String()
	}
	if s.cfg.UDP != "" {
		ua, err := net.ResolveUDPAddr("udp", s.cfg.UDP)
		if err != nil {
			return fmt.Errorf("resolve udp echo %q: %w", s.cfg.UDP, err)
		}
		if s.udp, err = net.ListenUDP("udp", ua); err != nil {
			return fmt.Errorf("listen udp echo %q: %w", s.cfg.UDP, err)
		}
		s.addrs.UDP = s.udp.LocalAddr().String()
	}
	return nil
}

func (s *Server) run() {
	if s.tcp != nil {
		s.goServe(func() { s.acceptLoop(s.tcp, s.echoTCP) })
	}
	if s.sink != nil {
		s.goServe(func() { s.acceptLoop(s.sink, sinkTCP) })
	}
	if s.udp != nil {
		s.startUDPEcho()
	}
	if s.httpL != nil {
		s.http = newHTTPServer(s.cfg)
		s.goServe(func() { _ = s.http.Serve(s.httpL) })
	}
}

func (s *Server) goServe(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) acceptLoop(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if !s.track(c, func() { c.Close() }) {
			c.Close()
			return
		}
		s.goServe(func() {
			defer s.untrack(c)
			defer c.Close()
			handle(c)
		})
	}
}

// track registers (or replaces) stop as what Close calls to end the live connection key; it
// reports false once the server is closed.
func (s *Server) track(key any, stop func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[key] = stop
	return true
}

func (s *Server) untrack(key any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, key)
}

// Close stops all listeners, closes open connections and waits for handlers to return.
// It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, stop := range s.conns {
		stop()
	}
	s.mu.Unlock()

	var errs []error
	for _, c := range []io.Closer{s.tcp, s.sink, s.httpL} {
		if c != nil {
			if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	if s.udp != nil {
		s.udp.Close() // already closed if a blocking echo took it over
	}
	if s.http != nil {
		s.http.Close()
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// echoTCPPoll writes back every byte it reads, preserving lengths, until the peer closes.
// It reuses one buffer, so a request-response exchange allocates nothing.
func echoTCPPoll(c net.Conn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// sinkTCP discards everything until the peer half-closes, then replies with the byte count
// as 8 bytes big-endian so the sender knows when the data has arrived.
func sinkTCP(c net.Conn) {
	buf := make([]byte, 256<<10)
	var total uint64
	for {
		n, err := c.Read(buf)
		total += uint64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return
		}
	}
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], total)
	_, _ = c.Write(out[:])
}

// echoUDPPoll returns every datagram to its sender until the socket is closed. The AddrPort
// variants keep it allocation-free.
func echoUDPPoll(c *net.UDPConn) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = c.WriteToUDPAddrPort(buf[:n], from)
	}
}
