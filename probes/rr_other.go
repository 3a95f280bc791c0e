//go:build !linux || 386

package probes

import (
	"errors"
	"net"
)

// newRRIO waits through the runtime's poller: blocking socket calls are Linux-only here.
func newRRIO(conn net.Conn, cfg RRConfig) (rrIO, error) {
	if cfg.BusyPoll {
		return nil, errors.New("busy polling is supported on Linux only")
	}
	return pollIO{conn}, nil
}
