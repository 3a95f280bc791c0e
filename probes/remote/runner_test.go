package remote

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hybridlab/probes"
)

const testDeadline = 10 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

var (
	buildOnce sync.Once
	agentPath string
	buildErr  error
	buildDir  string
)

// agent builds the probe binary once per test binary, the way the product ships it.
func agent(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "hlp-probe-")
		if buildErr != nil {
			return
		}
		agentPath = filepath.Join(buildDir, "probe")
		cmd := exec.Command("go", "build", "-trimpath", "-o", agentPath,
			"hybridlab/probes/cmd/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build probe agent: %v", buildErr)
	}
	return agentPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func TestLocalExecReportsExitCodeAndStderr(t *testing.T) {
	out, err := Local{}.Exec(testContext(t), "sh", "-c", "echo partial; echo broken >&2; exit 3")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || strings.TrimSpace(ee.Stderr) != "broken" {
		t.Fatalf("err = %v, want exit 3 with stderr", err)
	}
	if string(out) != "partial\n" {
		t.Fatalf("stdout = %q", out)
	}
	if !strings.Contains(err.Error(), "exit 3: broken") || !strings.Contains(err.Error(), "host") {
		t.Fatalf("error text %q", err)
	}
}

func TestLocalRunsAgent(t *testing.T) {
	r := Local{Path: agent(t)}
	p, err := r.Start(testContext(t), "serve", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0",
		"--sink", "", "--http", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(testDeadline); err != nil {
			t.Errorf("stop serve: %v", err)
		}
	})
	addrs := readyAddrs(t, p)

	res, err := RR(testContext(t), r, probes.RRConfig{Target: addrs.UDP, Proto: "udp",
		Count: 100})
	if err != nil || res.OK != 100 || res.P50Us <= 0 {
		t.Fatalf("rr: %+v, %v", res, err)
	}
	c, err := Connect(testContext(t), r, probes.ConnectConfig{Target: addrs.TCP})
	if err != nil || !c.OK {
		t.Fatalf("connect: %+v, %v", c, err)
	}
	v, err := Version(testContext(t), r)
	if err != nil || v.Version != "dev" || v.OS != "linux" {
		t.Fatalf("version: %+v, %v", v, err)
	}
	_, err = r.Run(testContext(t), "rr", "--bogus")
	var ee *ExitError
	if !errors.As(err, &ee) || !ee.Usage() {
		t.Fatalf("bad flag: err = %v, want usage exit", err)
	}
}

func readyAddrs(t *testing.T, p *Process) probes.ServeAddrs {
	t.Helper()
	var ready struct {
		Event string `json:"event"`
		probes.ServeAddrs
	}
	if err := json.Unmarshal(p.Ready, &ready); err != nil || ready.Event != "listening" {
		t.Fatalf("ready line %q: %v", p.Ready, err)
	}
	return ready.ServeAddrs
}

// fakeRunner returns a canned output and records the arguments it was given.
type fakeRunner struct {
	out  string
	err  error
	args []string
}

func (f *fakeRunner) Run(_ context.Context, args ...string) ([]byte, error) {
	f.args = args
	return []byte(f.out), f.err
}

func TestHelpersBuildArgumentsAndParse(t *testing.T) {
	f := &fakeRunner{out: `{"target":"10.88.0.1:7000","proto":"udp","count":5,"ok":4,` +
		`"errors":1,"p50_us":12.5}`}
	res, err := RR(testContext(t), f, probes.RRConfig{Target: "10.88.0.1:7000", Proto: "udp",
		Count: 5, Size: 32, Interval: time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil || res.OK != 4 || res.Errors != 1 || res.P50Us != 12.5 {
		t.Fatalf("rr: %+v, %v", res, err)
	}
	want := "rr --target 10.88.0.1:7000 --proto udp --count 5 --size 32 --interval 1ms " +
		"--warmup 0 --timeout 200ms"
	if got := strings.Join(f.args, " "); got != want {
		t.Fatalf("rr args:\n got %s\nwant %s", got, want)
	}
	if _, err := RR(testContext(t), f, probes.RRConfig{Target: "h:1", BusyPoll: true,
		Poller: true}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.args, " "); got != "rr --target h:1 --warmup 0 --busy-poll --poller" {
		t.Fatalf("rr wait-mode args %q", got)
	}

	f.out = `{"server":"10.88.0.1:53","ok":true,"rcode":"NOERROR","answers":[{"data":"10.88.0.9"}]}`
	d, err := DNS(testContext(t), f, probes.DNSConfig{Server: "10.88.0.1", Name: "web.lab",
		Type: "A"})
	if err != nil || d.Rcode != "NOERROR" || d.Answers[0].Data != "10.88.0.9" {
		t.Fatalf("dns: %+v, %v", d, err)
	}
	if got := strings.Join(f.args, " "); got != "dns --server 10.88.0.1 --name web.lab --type A" {
		t.Fatalf("dns args %q", got)
	}

	f.out = "not json"
	if _, err := Connect(testContext(t), f, probes.ConnectConfig{Target: "x:1"}); err == nil ||
		!strings.Contains(err.Error(), "parse probe connect output") {
		t.Fatalf("garbage output: err = %v", err)
	}
	f.err = &ExitError{Code: 1, Stderr: "dial refused"}
	if _, err := Tput(testContext(t), f, probes.TputConfig{Target: "x:1"}); !errors.Is(err, f.err) {
		t.Fatalf("exit error not passed through: %v", err)
	}
}
