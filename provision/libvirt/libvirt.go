// Package libvirt manages the libvirt objects of a lab through libvirtd's
// RPC socket: the isolated management network, and inspection and removal
// of the domains, volumes and pool that vagrant-libvirt creates.
package libvirt

import (
	"errors"
	"fmt"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// DefaultSocket is libvirtd's read-write socket for qemu:///system.
const DefaultSocket = "/run/libvirt/libvirt-sock"

// Conn is a connection to libvirtd. It is safe for concurrent use.
type Conn struct {
	l *golibvirt.Libvirt
}

// Dial connects to libvirtd at socket (DefaultSocket when empty), like
// `virsh -c qemu:///system`.
func Dial(socket string) (*Conn, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(socket),
		dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return nil, fmt.Errorf("connect to libvirtd at %s: %w", socket, err)
	}
	return &Conn{l: l}, nil
}

// Close ends the connection.
func (c *Conn) Close() error {
	return c.l.Disconnect()
}

// isNotFound reports a libvirt "no such object" error for any object kind,
// so removals treat an absent object as already removed.
func isNotFound(err error) bool {
	var le golibvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	switch golibvirt.ErrorNumber(le.Code) {
	case golibvirt.ErrNoDomain, golibvirt.ErrNoNetwork, golibvirt.ErrNoStoragePool,
		golibvirt.ErrNoStorageVol:
		return true
	}
	return false
}

func hasCode(err error, code golibvirt.ErrorNumber) bool {
	var le golibvirt.Error
	return errors.As(err, &le) && golibvirt.ErrorNumber(le.Code) == code
}
