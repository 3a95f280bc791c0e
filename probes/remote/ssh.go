package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// VagrantKeyGlob matches the insecure private key shipped with Debian's vagrant package.
const VagrantKeyGlob = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant"

// SSH runs the agent on a VM over SSH (`ssh -i KEY vagrant@ADDR /usr/local/bin/probe ARGS…`).
// It keeps one connection, dialled on first use, until Close. Host keys are not checked:
// lab VMs are recreated with fresh host keys on every `up` and are reached only on the lab
// bridge. Safe for concurrent use.
type SSH struct {
	Addr        string        // host or host:port (port 22 when omitted)
	User        string        // default "vagrant"
	KeyPath     string        // private key; default the first match of VagrantKeyGlob
	Path        string        // agent path on the VM; default AgentPath
	DialTimeout time.Duration // default 10s

	mu     sync.Mutex
	client *ssh.Client
}

// Run implements Runner.
func (s *SSH) Run(ctx context.Context, args ...string) ([]byte, error) {
	return s.Exec(ctx, append([]string{orDefault(s.Path, AgentPath)}, args...)...)
}

// Exec implements Execer. Arguments are quoted for the remote shell.
func (s *SSH) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	where := fmt.Sprintf("vm %s", s.Addr)
	client, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := client.NewSession()
	if err != nil {
		s.drop(client)
		return nil, fmt.Errorf("open ssh session to %s: %w", s.Addr, err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()

	err = sess.Run(ShellQuote(argv))
	var ee *ssh.ExitError
	switch {
	case ctx.Err() != nil:
		return stdout.Bytes(), fmt.Errorf("run %q on %s: %w", argv[0], where, ctx.Err())
	case errors.As(err, &ee):
		return stdout.Bytes(), &ExitError{Where: where, Args: argv, Code: ee.ExitStatus(),
			Stderr: stderr.String()}
	case err != nil:
		return stdout.Bytes(), fmt.Errorf("run %q on %s: %w", argv[0], where, err)
	}
	return stdout.Bytes(), nil
}

// Close closes the SSH connection, if any.
func (s *SSH) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

func (s *SSH) drop(c *ssh.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == c {
		s.client.Close()
		s.client = nil
	}
}

func (s *SSH) connect(ctx context.Context) (*ssh.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	cfg, err := s.clientConfig()
	if err != nil {
		return nil, err
	}
	addr := s.Addr
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "22")
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial ssh %s: %w", addr, err)
	}
	// The handshake has no context of its own; a deadline bounds a VM that accepts TCP but
	// never speaks SSH (still booting).
	_ = conn.SetDeadline(time.Now().Add(cfg.Timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh handshake with %s as %q: %w", addr, cfg.User, err)
	}
	_ = conn.SetDeadline(time.Time{})
	s.client = ssh.NewClient(c, chans, reqs)
	return s.client, nil
}

func (s *SSH) clientConfig() (*ssh.ClientConfig, error) {
	keyPath := s.KeyPath
	if keyPath == "" {
		var err error
		if keyPath, err = VagrantKey(); err != nil {
			return nil, err
		}
	}
	pem, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read ssh key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("parse ssh key %s: %w", keyPath, err)
	}
	timeout := s.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &ssh.ClientConfig{
		User:            orDefault(s.User, "vagrant"),
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // lab VMs only; see the type's doc
		Timeout:         timeout,
	}, nil
}

// ErrNoVagrantKey is returned when the vagrant package's insecure key is not installed.
var ErrNoVagrantKey = errors.New("vagrant insecure key not found (install the vagrant package)")

// VagrantKey returns the path of Vagrant's insecure private key (see VagrantKeyGlob).
func VagrantKey() (string, error) {
	matches, err := filepath.Glob(VagrantKeyGlob)
	if err != nil {
		return "", fmt.Errorf("glob %s: %w", VagrantKeyGlob, err)
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("find %s: %w", VagrantKeyGlob, ErrNoVagrantKey)
	}
	return matches[len(matches)-1], nil
}

// ShellQuote joins argv into one POSIX shell command line, quoting every word that needs it.
func ShellQuote(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"+
			"0123456789-_./:=,@%+") == "" {
			words[i] = a
			continue
		}
		words[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(words, " ")
}
