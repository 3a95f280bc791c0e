package reports

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hybridlab/bench"
)

// -out keeps the rendered pages in a directory to look at them.
var outDir = flag.String("out", "", "also write the sample reports to this directory")

func sampleResult(t *testing.T) *bench.Result {
	t.Helper()
	res, err := bench.ReadResult("testdata/latency.json")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func reportDir(t *testing.T) string {
	if *outDir != "" {
		return *outDir
	}
	return t.TempDir()
}

func TestWriteLatency(t *testing.T) {
	res := sampleResult(t)
	dir := reportDir(t)
	if err := WriteLatency(dir, res); err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(dir, LatencyHTML))
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	wantSVGs := 2 * len(res.Settings.Protos) * len(res.Settings.Sizes)
	if n := strings.Count(page, "<svg"); n != wantSVGs {
		t.Errorf("%d inline SVGs, want %d", n, wantSVGs)
	}
	for _, want := range []string{"<td class=\"l\">veth</td>", "p50 / floor", "sockperf p50",
		"iperf3 Gbit/s", "iptables FORWARD policy", "net.bridge.bridge-nf-call-iptables",
		res.Env.Kernel} {
		if !strings.Contains(page, want) {
			t.Errorf("latency.html lacks %q", want)
		}
	}
	if strings.Contains(page, "<?xml") {
		t.Error("inline SVG keeps its XML prologue")
	}
	back, err := bench.ReadResult(filepath.Join(dir, LatencyJSON))
	if err != nil || len(back.Latency) != len(res.Latency) {
		t.Errorf("latency.json round trip: %v", err)
	}
}

func TestWriteLatencyNoisyAndEmpty(t *testing.T) {
	res := sampleResult(t)
	res.Noisy = true
	res.Noise[0].Noisy = true
	res.Noise[0].Message = "floor \"veth\" tcp/64 p50 varied by CV 9.9%"
	res.Fidelity, res.TputFid, res.Tput = nil, nil, nil
	dir := t.TempDir()
	if err := WriteLatency(dir, res); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(dir, LatencyHTML))
	for _, want := range []string{"Noisy run", "CV 9.9%", "Not measured in this run"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("latency.html lacks %q", want)
		}
	}
}

func TestWriteLatencyRoutingTable(t *testing.T) {
	res := sampleResult(t)
	dir := reportDir(t)
	page := func() string {
		if err := WriteLatency(dir, res); err != nil {
			t.Fatal(err)
		}
		html, err := os.ReadFile(filepath.Join(dir, LatencyHTML))
		if err != nil {
			t.Fatal(err)
		}
		return string(html)
	}
	if strings.Contains(page(), "Bridge-to-bridge routing") {
		t.Error("a run without routed paths shows the routing table")
	}
	res.Routing = []bench.Routing{{Routed: "container-vm-routed", Shared: "container-vm",
		Proto: "tcp", Size: 64, RoutedUs: 250, SharedUs: 200, P50Ratio: 1.25, P99Ratio: 1.5,
		AddedUs: 50}}
	got := page()
	for _, want := range []string{"Bridge-to-bridge routing", "container-vm-routed",
		"<td>1.25×</td>", "<td>50.00</td>"} {
		if !strings.Contains(got, want) {
			t.Errorf("latency.html lacks %q", want)
		}
	}
}
