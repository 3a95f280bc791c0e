package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// sshServer is an in-test SSH server on 127.0.0.1 that accepts one client key and answers
// exec requests through handle(command) → (stdout, stderr, exit status).
type sshServer struct {
	addr     string
	mu       sync.Mutex
	commands []string
}

func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func startSSH(t *testing.T, client ssh.PublicKey,
	handle func(cmd string) (string, string, uint32)) *sshServer {
	t.Helper()
	hostKey, _ := newKey(t)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "vagrant" && string(k.Marshal()) == string(client.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &sshServer{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serveConn(c, cfg, handle)
		}
	}()
	return s
}

func (s *sshServer) serveConn(c net.Conn, cfg *ssh.ServerConfig,
	handle func(string) (string, string, uint32)) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		go s.serveSession(ch, chReqs, handle)
	}
}

func (s *sshServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request,
	handle func(string) (string, string, uint32)) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(false, nil)
			continue
		}
		cmd := string(req.Payload[4:])
		s.mu.Lock()
		s.commands = append(s.commands, cmd)
		s.mu.Unlock()
		_ = req.Reply(true, nil)
		stdout, stderr, code := handle(cmd)
		_, _ = ch.Write([]byte(stdout))
		_, _ = ch.Stderr().Write([]byte(stderr))
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, code)
		_, _ = ch.SendRequest("exit-status", false, status)
		return
	}
}

func TestSSHRunsAgentAndReportsExitStatus(t *testing.T) {
	signer, keyPEM := newKey(t)
	keyPath := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startSSH(t, signer.PublicKey(), func(cmd string) (string, string, uint32) {
		if strings.HasSuffix(cmd, " version") {
			return `{"version":"v1","os":"linux"}` + "\n", "", 0
		}
		return "", "probe rr: --target is required\n", 2
	})
	r := &SSH{Addr: srv.addr, KeyPath: keyPath}
	defer r.Close()

	v, err := Version(testContext(t), r)
	if err != nil || v.Version != "v1" {
		t.Fatalf("version over ssh: %+v, %v", v, err)
	}
	_, err = r.Run(testContext(t), "rr", "--name", "it's")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(ee.Stderr, "--target") {
		t.Fatalf("failing command: err = %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	want := []string{"/usr/local/bin/probe version", `/usr/local/bin/probe rr --name 'it'\''s'`}
	if strings.Join(srv.commands, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands seen by the VM:\n%s", strings.Join(srv.commands, "\n"))
	}
}

func TestSSHRejectedKey(t *testing.T) {
	signer, _ := newKey(t)
	_, otherPEM := newKey(t)
	keyPath := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyPath, otherPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startSSH(t, signer.PublicKey(), func(string) (string, string, uint32) {
		return "", "", 0
	})
	r := &SSH{Addr: srv.addr, KeyPath: keyPath}
	_, err := r.Run(context.Background(), "version")
	if err == nil || !strings.Contains(err.Error(), "ssh handshake with") {
		t.Fatalf("err = %v, want handshake failure", err)
	}
}

func TestVagrantKeyParses(t *testing.T) {
	path, err := VagrantKey()
	if errors.Is(err, ErrNoVagrantKey) {
		t.Skip("vagrant package not installed: no insecure key to parse")
	}
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssh.ParsePrivateKey(pemBytes); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
}

func TestShellQuote(t *testing.T) {
	got := ShellQuote([]string{"/usr/local/bin/probe", "dns", "--name", "web.lab", "",
		"a b", "$(reboot)", "x'y"})
	want := `/usr/local/bin/probe dns --name web.lab '' 'a b' '$(reboot)' 'x'\''y'`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
