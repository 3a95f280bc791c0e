//go:build !linux || 386

package probes

import "net"

// echoTCP echoes one accepted connection through the runtime's poller.
func (s *Server) echoTCP(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	echoTCPPoll(c)
}

// startUDPEcho serves the UDP echo through the runtime's poller.
func (s *Server) startUDPEcho() { s.goServe(func() { echoUDPPoll(s.udp) }) }
