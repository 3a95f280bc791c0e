package deps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a fake daemon, selected by HLT_DEPS_HELPER:
//
//	daemon   serves GET /_ping on $HLT_SOCK until SIGTERM
//	late     writes its pid file, then serves like daemon after 300 ms
//	crash    prints an error and exits 3
//	silent   writes its pid file and never answers
//	starter  starts a "daemon" with ensure, prints "PID STARTTIME", exits
func TestMain(m *testing.M) {
	switch os.Getenv("HLT_DEPS_HELPER") {
	case "":
		os.Exit(m.Run())
	case "daemon":
		serve()
	case "late":
		writePID()
		<-time.After(300 * time.Millisecond)
		serve()
	case "crash":
		fmt.Fprintln(os.Stderr, "fake daemon: bad configuration")
		os.Exit(3)
	case "silent":
		writePID()
		waitForTerm()
	case "starter":
		starter()
	}
	os.Exit(0)
}

func serve() {
	l, err := net.Listen("unix", os.Getenv("HLT_SOCK"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "fake daemon listening")
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "OK")
	})
	go func() { _ = http.Serve(l, mux) }()
	waitForTerm()
	l.Close()
}

func waitForTerm() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM)
	<-c
}

func writePID() {
	_ = os.WriteFile(os.Getenv("HLT_SOCK")+".pid", []byte(strconv.Itoa(os.Getpid())), 0o644)
}

func starter() {
	s := fakeSpec(os.Getenv("HLT_SOCK"), os.Getenv("HLT_LOGDIR"), "daemon")
	d, err := ensure(context.Background(), s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(d.PID, d.StartTime)
}

// fakeSpec starts this test binary as a daemon in the given helper mode.
func fakeSpec(sock, logDir, mode string) daemonSpec {
	return daemonSpec{
		name:    filepath.Base(os.Args[0]),
		path:    os.Args[0],
		args:    []string{"-test.run=^$"},
		env:     []string{"HLT_DEPS_HELPER=" + mode, "HLT_SOCK=" + sock},
		logDir:  logDir,
		timeout: daemonReadyTimeout,
		ready:   dockerPing(sock),
	}
}

// daemonReadyTimeout bounds how long the fake daemon may take to answer.
const daemonReadyTimeout = 10 * time.Second

// killAtEnd makes sure a process the test started is gone afterwards.
func killAtEnd(t *testing.T, pid int) {
	t.Cleanup(func() {
		if pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func statFields(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

func TestStartsDaemonDetached(t *testing.T) {
	dir := t.TempDir()
	s := fakeSpec(filepath.Join(dir, "d.sock"), filepath.Join(dir, "log"), "daemon")
	ctx := context.Background()

	d, err := ensure(ctx, s)
	if err != nil {
		t.Fatalf("ensure: %v", err)
	}
	killAtEnd(t, d.PID)
	if !d.Started || d.PID <= 0 || d.StartTime == 0 || d.Ready <= 0 {
		t.Errorf("ensure = %+v, want started with pid, start time, ready time", d)
	}
	// Fields after the comm: state ppid pgrp session.
	f := statFields(t, d.PID)
	if f[2] != strconv.Itoa(d.PID) || f[3] != strconv.Itoa(d.PID) {
		t.Errorf("pgrp %s, session %s: want both %d (own session, own group)", f[2], f[3],
			d.PID)
	}
	log, _ := os.ReadFile(d.Log)
	if !strings.Contains(string(log), "started by hybridlab") ||
		!strings.Contains(string(log), "fake daemon listening") {
		t.Errorf("log %s:\n%s", d.Log, log)
	}

	again, err := ensure(ctx, s)
	if err != nil || again.Started {
		t.Errorf("second ensure = %+v, %v; want already running", again, err)
	}
	if err := Stop(ctx, again); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Stop of a daemon not started here = %v, want ErrNotStarted", err)
	}

	if err := Stop(ctx, d); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if sameProcess(d) {
		t.Error("daemon still running after Stop")
	}
}

func TestDaemonOutlivesTheProcessThatStartedIt(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "d.sock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HLT_DEPS_HELPER=starter", "HLT_SOCK="+sock,
		"HLT_LOGDIR="+filepath.Join(dir, "log"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("starter: %v", err)
	}
	var d Daemon
	if _, err := fmt.Sscan(string(out), &d.PID, &d.StartTime); err != nil {
		t.Fatalf("starter printed %q: %v", out, err)
	}
	killAtEnd(t, d.PID)
	d.Name, d.Started = filepath.Base(os.Args[0]), true

	ctx := context.Background()
	if err := dockerPing(sock)(ctx); err != nil {
		t.Fatalf("daemon gone after its starter exited: %v", err)
	}
	if ppid := statFields(t, d.PID)[1]; ppid == strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("daemon's parent is still the exited starter")
	}

	reused := d
	reused.StartTime++
	if err := Stop(ctx, reused); err != nil || !sameProcess(d) {
		t.Errorf("Stop with another start time = %v; it must not touch pid %d", err, d.PID)
	}
	if err := Stop(ctx, d); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if dockerPing(sock)(ctx) == nil {
		t.Error("daemon still answers after Stop")
	}
}

func TestDaemonThatExitsShowsItsLog(t *testing.T) {
	dir := t.TempDir()
	s := fakeSpec(filepath.Join(dir, "d.sock"), dir, "crash")
	_, err := ensure(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") ||
		!strings.Contains(err.Error(), "fake daemon: bad configuration") {
		t.Errorf("ensure of a crashing daemon = %v", err)
	}
}

func TestDaemonThatNeverAnswersIsStopped(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "d.sock")
	s := fakeSpec(sock, dir, "silent")
	s.timeout = 500 * time.Millisecond
	_, err := ensure(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "not ready after 500ms") {
		t.Fatalf("ensure of a silent daemon = %v", err)
	}
	pid := runningPID(sock+".pid", s.name)
	killAtEnd(t, pid)
	eventually(t, func() bool { return runningPID(sock+".pid", s.name) == 0 },
		"silent daemon still running after a failed start")
}

// eventually polls cond until it holds or daemonReadyTimeout passes.
func eventually(t *testing.T, cond func() bool, failure string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(daemonReadyTimeout)
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("after %s: %s", daemonReadyTimeout, failure)
		case <-tick.C:
		}
	}
}

func TestWaitsForDaemonStartedElsewhere(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "d.sock")
	other := exec.Command(os.Args[0], "-test.run=^$")
	other.Env = append(os.Environ(), "HLT_DEPS_HELPER=late", "HLT_SOCK="+sock)
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	eventually(t, func() bool { return runningPID(sock+".pid", filepath.Base(os.Args[0])) > 0 },
		"late daemon never wrote its pid file")

	s := fakeSpec(sock, dir, "daemon")
	s.pidFile = sock + ".pid"
	d, err := ensure(context.Background(), s)
	if err != nil || d.Started {
		t.Errorf("ensure while another instance starts = %+v, %v; want waited, not started",
			d, err)
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (odd) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 " +
		"987654 1000 10 18446744073709551615"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "odd) name" || st.state != "S" || st.start != 987654 {
		t.Errorf("parseStat = %+v", st)
	}
}

func TestRecognisesRunningHostDaemons(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("host daemons test: needs root to talk to dockerd and libvirtd")
	}
	ctx := context.Background()
	if err := dockerPing(DockerSocket)(ctx); err != nil {
		t.Logf("dockerd not answering (%v): not starting the host's dockerd from a test", err)
	} else {
		d, err := EnsureDockerd(ctx)
		if err != nil || d.Started {
			t.Errorf("EnsureDockerd with dockerd running = %+v, %v", d, err)
		}
	}
	if err := socketAccepts(LibvirtSocket)(ctx); err != nil {
		t.Skipf("libvirtd not running (%v): not starting the host's libvirtd from a test", err)
	}
	if err := libvirtAnswers(LibvirtSocket)(ctx); err != nil {
		t.Fatalf("libvirtd accepts but does not answer RPC: %v", err)
	}
	ds, err := EnsureLibvirtd(ctx)
	if err != nil || len(ds) != 2 || ds[0].Started || ds[1].Started {
		t.Errorf("EnsureLibvirtd with libvirtd running = %+v, %v", ds, err)
	}
}
