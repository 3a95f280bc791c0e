//go:build linux && !386

package probes

import (
	"errors"
	"net"
	"syscall"
)

// maxBlockingEchoes bounds the TCP echo connections served with blocking calls: each holds
// an OS thread while it waits, so connections beyond this are echoed through the poller.
const maxBlockingEchoes = 64

// echoTCP echoes one accepted connection: with blocking calls on its own thread when the
// server may, through the poller otherwise. TCP_NODELAY is set either way, so an echo
// leaves at once (Go sets it on accepted connections already; this keeps it explicit).
func (s *Server) echoTCP(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		echoTCPPoll(c)
		return
	}
	_ = tc.SetNoDelay(true)
	if !s.reserveThread() {
		echoTCPPoll(c)
		return
	}
	defer s.blocking.Add(-1)
	sock, err := takeOver(tc)
	if err != nil {
		return
	}
	defer sock.close()
	// From here Close must shut the socket down: closing c no longer reaches it.
	if !s.track(c, sock.shutdown) {
		return
	}
	echoTCPBlocking(sock)
}

// reserveThread counts one more blocking echo connection and reports true, unless the
// server uses the poller or already holds its limit of them.
func (s *Server) reserveThread() bool {
	if s.cfg.Poller {
		return false
	}
	limit := int32(maxBlockingEchoes)
	if s.cfg.maxBlocking > 0 {
		limit = s.cfg.maxBlocking
	}
	if s.blocking.Add(1) > limit {
		s.blocking.Add(-1)
		return false
	}
	return true
}

// echoTCPBlocking writes back every byte it reads until the peer closes or the socket is
// shut down. It reuses one buffer, so an exchange allocates nothing.
func echoTCPBlocking(sock *blockSock) {
	buf := make([]byte, 64<<10)
	var y yielder
	var calls uint
	for {
		y.counted(&calls)
		n, err := sock.recv(buf, false)
		if err != nil || n == 0 {
			return
		}
		if err := sock.send(buf[:n]); err != nil {
			return
		}
	}
}

// startUDPEcho serves the UDP echo on a thread of its own with blocking calls, or through
// the poller when the server must or the socket cannot be taken over.
func (s *Server) startUDPEcho() {
	if s.cfg.Poller {
		s.goServe(func() { echoUDPPoll(s.udp) })
		return
	}
	sock, err := takeOver(s.udp)
	if err != nil {
		s.goServe(func() { echoUDPPoll(s.udp) })
		return
	}
	if !s.track(sock, sock.shutdown) {
		sock.close()
		return
	}
	s.goServe(func() {
		defer s.untrack(sock)
		defer sock.close()
		echoUDPBlocking(sock)
	})
}

// echoUDPBlocking returns every datagram to its sender until the socket is shut down.
func echoUDPBlocking(sock *blockSock) {
	buf := make([]byte, 64<<10)
	var from peer
	var y yielder
	var calls uint
	for {
		y.counted(&calls)
		n, err := sock.recvFrom(buf, &from)
		switch {
		case errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EBADF):
			return
		case err != nil:
			continue
		}
		_ = sock.sendTo(buf[:n], &from)
	}
}
