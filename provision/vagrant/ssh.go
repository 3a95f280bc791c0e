package vagrant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
)

// insecureKeyGlob is the private half of Vagrant's insecure key, which
// the box authorises for user vagrant.
const insecureKeyGlob = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant"

// ErrExit wraps a remote command's non-zero exit.
var ErrExit = errors.New("remote command failed")

func insecureSigner() (ssh.Signer, error) {
	keys, _ := filepath.Glob(insecureKeyGlob)
	if len(keys) == 0 {
		return nil, fmt.Errorf("read vagrant insecure key: none at %s", insecureKeyGlob)
	}
	pem, err := os.ReadFile(keys[len(keys)-1])
	if err != nil {
		return nil, fmt.Errorf("read vagrant insecure key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("parse vagrant insecure key: %w", err)
	}
	return s, nil
}

// runSSH runs cmd as user vagrant on addr:22 and returns its stdout. A
// non-zero exit wraps ErrExit and carries stderr.
func runSSH(ctx context.Context, addr netip.Addr, signer ssh.Signer, cmd string) (string, error) {
	cfg := &ssh.ClientConfig{
		User: "vagrant",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		// Lab VMs share host keys baked into the box and are reached only
		// over the isolated management network; there is nothing to pin.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	}
	target := netip.AddrPortFrom(addr, 22).String()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return "", fmt.Errorf("ssh %s: %w", target, err)
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, target, cfg)
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("ssh %s: %w", target, err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	sess, err := client.NewSession()
	if err != nil {
		return "", fmt.Errorf("ssh %s: open session: %w", target, err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return stdout.String(), fmt.Errorf("ssh %s %q: %w", target, cmd, ctx.Err())
		}
		return stdout.String(), fmt.Errorf("%w: ssh %s %q: %v: %s", ErrExit, target, cmd, err,
			bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}
