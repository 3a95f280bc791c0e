package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hybridlab/probes"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// jsonKeys returns the sorted top-level keys of a JSON object.
func jsonKeys(t *testing.T, s string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, s)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n got: %s\nwant: %s", name, got, want)
	}
}

func startServer(t *testing.T) probes.ServeAddrs {
	s, err := probes.Start(probes.ServeConfig{TCP: "127.0.0.1:0", UDP: "127.0.0.1:0",
		Sink: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Addrs()
}

func TestJSONOutputShape(t *testing.T) {
	addrs := startServer(t)
	cases := []struct {
		golden string
		args   []string
	}{
		{"rr_tcp.keys", []string{"rr", "--target", addrs.TCP, "--count", "50"}},
		{"rr_udp.keys", []string{"rr", "--target", addrs.UDP, "--proto", "udp",
			"--count", "20", "--interval", "1ms"}},
		{"tput.keys", []string{"tput", "--target", addrs.Sink, "--duration", "50ms"}},
		{"connect.keys", []string{"connect", "--target", addrs.TCP}},
		{"version.keys", []string{"version"}},
	}
	for _, tc := range cases {
		code, out, errOut := runCLI(t, tc.args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", tc.args, code, errOut)
		}
		checkGolden(t, tc.golden, strings.Join(jsonKeys(t, out), "\n")+"\n")
	}
}

func TestRRHistogramIsMergeable(t *testing.T) {
	addrs := startServer(t)
	_, out, _ := runCLI(t, "rr", "--target", addrs.TCP, "--count", "30", "--warmup", "0")
	var res probes.RRResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	h, err := probes.MergeHistograms(res.Histogram, res.Histogram)
	if err != nil || h.TotalCount() != 60 {
		t.Fatalf("merge: %v, count %d", err, h.TotalCount())
	}
}

func TestConnectFailureExitsZero(t *testing.T) {
	code, out, _ := runCLI(t, "connect", "--target", "127.0.0.1:1")
	var res probes.ConnectResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 ||
		res.OK || res.Kind != probes.KindRefused {
		t.Fatalf("exit %d, result %+v", code, res)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"bogus"}, 2},
		{[]string{"rr"}, 2},
		{[]string{"rr", "--target", "127.0.0.1:1", "--count", "1", "--duration", "1s"}, 2},
		{[]string{"rr", "--nope"}, 2},
		{[]string{"connect", "--target", "127.0.0.1"}, 2},
		{[]string{"dns", "--server", "127.0.0.1"}, 2},
		{[]string{"version", "extra"}, 2},
		{[]string{"rr", "--target", "127.0.0.1:1"}, 1},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if code != tc.code || out != "" || errOut == "" {
			t.Errorf("%q: exit %d (want %d), stdout %q, stderr %q", tc.args, code, tc.code,
				out, errOut)
		}
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, cmd := range []string{"serve", "rr", "tput", "dns", "connect", "version"} {
		code, out, errOut := runCLI(t, cmd, "--help")
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage: probe "+cmd) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
	}
	code, out, _ := runCLI(t, "--help")
	if code != 0 || !strings.Contains(out, "Commands:") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

func TestGetFetchesByName(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from "+r.URL.Path)
	}))
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/x"
	code, out, errOut := runCLI(t, "get", "--url", url)
	if code != 0 {
		t.Fatalf("probe get exit %d: %s", code, errOut)
	}
	var res struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if res.Status != 200 || res.Body != "hello from /x" {
		t.Errorf("probe get = %+v", res)
	}
	if code, _, _ := runCLI(t, "get", "--url", "http://127.0.0.1:1/", "--timeout", "1s"); code != 1 {
		t.Errorf("probe get of a closed port: exit %d, want 1", code)
	}
}
