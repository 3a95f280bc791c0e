//go:build linux && !386

package probes

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// blockSock is a socket descriptor on which goroutines make blocking system calls directly,
// bypassing the Go runtime's network poller. A reply then wakes the sleeping thread straight
// from the kernel instead of through epoll and a goroutine hand-off, which on a veth pair is
// most of the difference between a Go echo and sockperf. A blocked call holds its OS thread.
//
// One goroutine owns the socket: it reads, may let one other goroutine write meanwhile, and
// alone calls close once no call is in flight. shutdown may be called from any goroutine.
type blockSock struct {
	fd   int
	down atomic.Bool // shutdown was called: a zero-length read means "stopped"

	mu     sync.Mutex // serialises shutdown against close, so fd is never reused under it
	closed bool
}

// errTimedOut is returned when SO_RCVTIMEO or SO_SNDTIMEO expires (or a spinning read passes
// its deadline); it matches os.ErrDeadlineExceeded, like a net.Conn deadline.
var errTimedOut error = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "i/o timeout" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }
func (*timeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

// takeOver moves the socket of c out of the runtime's poller: it duplicates the descriptor,
// closes c (which deregisters it from epoll), and puts the duplicate in blocking mode. c must
// not be used afterwards. The connection itself stays open through the duplicate.
func takeOver(c interface {
	syscall.Conn
	io.Closer
}) (*blockSock, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("take over socket: %w", err)
	}
	fd := -1
	var dupErr error
	cerr := rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = e
			return
		}
		fd = int(r)
	})
	if err := errors.Join(cerr, dupErr); err != nil {
		return nil, fmt.Errorf("take over socket: duplicate descriptor: %w", err)
	}
	if err := c.Close(); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("take over socket: close pollable copy: %w", err)
	}
	// O_NONBLOCK belongs to the open file, which the closed copy shared: clear it only now.
	if err := syscall.SetNonblock(fd, false); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("take over socket: set blocking mode: %w", err)
	}
	return &blockSock{fd: fd}, nil
}

// setTimeouts sets SO_RCVTIMEO and SO_SNDTIMEO: a blocked recv or send gives up after d
// (0 = never) and returns errTimedOut.
func (s *blockSock) setTimeouts(d time.Duration) error {
	if err := s.setRecvTimeout(d); err != nil {
		return err
	}
	tv := timeval(d)
	if err := syscall.SetsockoptTimeval(s.fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO,
		&tv); err != nil {
		return fmt.Errorf("set SO_SNDTIMEO: %w", err)
	}
	return nil
}

func (s *blockSock) setRecvTimeout(d time.Duration) error {
	tv := timeval(d)
	if err := syscall.SetsockoptTimeval(s.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO,
		&tv); err != nil {
		return fmt.Errorf("set SO_RCVTIMEO: %w", err)
	}
	return nil
}

// timeval converts d for SO_RCVTIMEO; a positive d never becomes 0, which means "no timeout".
func timeval(d time.Duration) syscall.Timeval {
	if d > 0 && d < time.Microsecond {
		d = time.Microsecond
	}
	return syscall.NsecToTimeval(int64(d))
}

// recv reads into b, sleeping in the kernel until data arrives; with dontWait it returns
// syscall.EAGAIN at once instead. A zero n with a nil error is an empty datagram or the end
// of a stream; after shutdown it is net.ErrClosed.
func (s *blockSock) recv(b []byte, dontWait bool) (int, error) {
	flags := uintptr(0)
	if dontWait {
		flags = syscall.MSG_DONTWAIT
	}
	for {
		var n uintptr
		var e syscall.Errno
		if dontWait {
			n, _, e = syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(s.fd),
				uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), flags, 0, 0)
		} else {
			n, _, e = syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(s.fd),
				uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), flags, 0, 0)
		}
		switch {
		case e == syscall.EINTR:
			// SO_RCVTIMEO makes recv return EINTR even for SA_RESTART signal handlers.
			continue
		case e == syscall.EAGAIN && !dontWait:
			return 0, errTimedOut
		case e != 0:
			return 0, s.stopped(e)
		case n == 0 && s.down.Load():
			return 0, net.ErrClosed
		}
		return int(n), nil
	}
}

// send writes all of b, retrying after partial writes of a stream. MSG_NOSIGNAL turns a
// reset peer into EPIPE rather than SIGPIPE.
func (s *blockSock) send(b []byte) error {
	for len(b) > 0 {
		n, _, e := syscall.Syscall6(syscall.SYS_SENDTO, uintptr(s.fd),
			uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
			syscall.MSG_NOSIGNAL, 0, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return errTimedOut
		case e != 0:
			return s.stopped(e)
		}
		b = b[n:]
	}
	return nil
}

// peer is a datagram's source address as the kernel wrote it, for replying without
// converting it to a Go value (which would allocate).
type peer struct {
	raw syscall.RawSockaddrAny
	len uint32
}

// recvFrom reads one datagram into b and its sender into from, sleeping until one arrives.
func (s *blockSock) recvFrom(b []byte, from *peer) (int, error) {
	for {
		from.len = syscall.SizeofSockaddrAny
		n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(s.fd),
			uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)), 0,
			uintptr(unsafe.Pointer(&from.raw)), uintptr(unsafe.Pointer(&from.len)))
		switch {
		case e == syscall.EINTR:
			continue
		case e != 0:
			return 0, s.stopped(e)
		case n == 0 && s.down.Load():
			return 0, net.ErrClosed
		}
		return int(n), nil
	}
}

// sendTo sends b as one datagram to.
func (s *blockSock) sendTo(b []byte, to *peer) error {
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_SENDTO, uintptr(s.fd),
			uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
			syscall.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&to.raw)), uintptr(to.len))
		switch {
		case e == syscall.EINTR:
			continue
		case e != 0:
			return s.stopped(e)
		}
		return nil
	}
}

// stopped reports net.ErrClosed for any failure after shutdown, e otherwise.
func (s *blockSock) stopped(e syscall.Errno) error {
	if s.down.Load() {
		return net.ErrClosed
	}
	return e
}

// shutdown wakes every call blocked on the socket and makes later calls fail
// (shutdown(2) SHUT_RDWR, which also wakes a reader of an unconnected UDP socket).
// It is safe from any goroutine and after close.
func (s *blockSock) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.down.Store(true)
	_ = syscall.Shutdown(s.fd, syscall.SHUT_RDWR)
}

// close releases the descriptor. Only the owner calls it, once no call is in flight; it is
// idempotent.
func (s *blockSock) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := syscall.Close(s.fd); err != nil {
		return fmt.Errorf("close socket %d: %w", s.fd, err)
	}
	return nil
}
