package bench

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// testVeth is a floor fixture named after the test process, so that concurrent runs of this
// package (and a running default floor) never meet.
func testVeth() Veth {
	id := strconv.Itoa(os.Getpid())
	return Veth{NetnsA: "hlb-" + id + "-a", NetnsB: "hlb-" + id + "-b", LinkA: "hlb-va",
		LinkB: "hlb-vb",
		AddrA: netip.MustParsePrefix("10.99.0.101/24"),
		AddrB: netip.MustParsePrefix("10.99.0.102/24")}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces hlb-PID-a and hlb-PID-b")
	}
}

func upVeth(t *testing.T) Veth {
	t.Helper()
	v := testVeth()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := v.Up(ctx); err != nil {
		t.Fatalf("veth up: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Down(context.Background()); err != nil {
			t.Errorf("veth down: %v", err)
		}
	})
	return v
}

func TestRunLoopbackAndVeth(t *testing.T) {
	requireRoot(t)
	v := upVeth(t)
	cfg := Config{
		Paths:        []Path{LoopbackPath(PathOptions{}), VethPath(v, PathOptions{})},
		Repetitions:  3,
		Count:        300,
		Warmup:       20,
		TputDuration: 200 * time.Millisecond,
		Accelerator:  "none",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkSane(t, res, 2)
	if len(res.Tput) != 2 || res.Tput[1].Bps.Mean <= 0 || res.Tput[1].FloorRatio != 1 {
		t.Errorf("throughput: %+v", res.Tput)
	}
	if len(res.Env.Interfaces) != 3 || res.Env.Interfaces[1].MTU != 1500 {
		t.Errorf("environment interfaces: %+v", res.Env.Interfaces)
	}
}

// checkSane asserts the structure every run must have, whatever the figures.
func checkSane(t *testing.T, res *Result, paths int) {
	t.Helper()
	if len(res.Problems) > 0 {
		t.Errorf("problems: %q", res.Problems)
	}
	want := Schedule([]string{"loopback", "veth"}, []string{"tcp", "udp"}, []int{64}, 3)
	if len(res.Order) != len(want) {
		t.Fatalf("recorded %d trials, want %d", len(res.Order), len(want))
	}
	for i := range want {
		if res.Order[i] != want[i] {
			t.Errorf("trial %d = %v, want %v", i, res.Order[i], want[i])
		}
	}
	for _, proto := range []string{"tcp", "udp"} {
		floor := res.LatencyFor("veth", proto, 64)
		if floor == nil || floor.Merged.P50Us <= 0 || floor.P50Ratio != 1 {
			t.Fatalf("veth %s: %+v", proto, floor)
		}
		if floor.Merged.Samples != 3*300 || len(floor.RepP50Us) != 3 {
			t.Errorf("veth %s: %d samples over %d reps", proto, floor.Merged.Samples,
				len(floor.RepP50Us))
		}
		lo := res.LatencyFor("loopback", proto, 64)
		if lo == nil || lo.P50Ratio <= 0 || lo.P99Ratio <= 0 {
			t.Errorf("loopback %s ratios: %+v", proto, lo)
		}
		if floor.P50CI.Low > floor.P50CI.Mean || floor.P50CI.High < floor.P50CI.Mean {
			t.Errorf("veth %s p50 CI %+v", proto, floor.P50CI)
		}
		t.Logf("%s: loopback p50 %.1fµs p99 %.1fµs; veth p50 %.1fµs p99 %.1fµs; "+
			"ratio p50 %.2f; floor cv %.3f noisy %v", proto, lo.Merged.P50Us, lo.Merged.P99Us,
			floor.Merged.P50Us, floor.Merged.P99Us, lo.P50Ratio, floor.P50Var.CV, floor.Noisy)
	}
}

// TestFidelityVeth runs the probe agent binary next to sockperf and iperf3 on the floor.
func TestFidelityVeth(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"sockperf", "iperf3", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	bin := buildProbe(t)
	v := upVeth(t)
	lo := LoopbackPath(PathOptions{ProbeBinary: bin, Tools: true})
	// The host's loopback is shared with concurrent test runs: pick ports from the pid.
	base := 20000 + os.Getpid()%15000*3
	lo.Tools.Ports = ToolPorts{SockperfUDP: base, SockperfTCP: base + 1, Iperf3: base + 2}
	cfg := Config{
		Paths:       []Path{lo, VethPath(v, PathOptions{ProbeBinary: bin, Tools: true})},
		Repetitions: 3, Count: 300, Warmup: 20, TputDuration: time.Second,
		FidelityRepetitions: 2, FidelityDuration: time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkSane(t, res, 2)
	if len(res.Fidelity) != 4 || len(res.TputFid) != 2 {
		t.Fatalf("fidelity rows: %+v %+v", res.Fidelity, res.TputFid)
	}
	for _, f := range res.Fidelity {
		if f.Error != "" || f.SockperfP50Us <= 0 || f.P50Ratio <= 0 {
			t.Errorf("fidelity %s %s: %+v", f.Path, f.Proto, f)
		}
		t.Logf("fidelity %s %s: probe p50 %.1f p99 %.1f; sockperf p50 %.1f p99 %.1f; "+
			"ratios %.2f %.2f", f.Path, f.Proto, f.ProbeP50Us, f.ProbeP99Us, f.SockperfP50Us,
			f.SockperfP99Us, f.P50Ratio, f.P99Ratio)
	}
	for _, f := range res.TputFid {
		if f.Error != "" || f.Iperf3Bps <= 0 {
			t.Errorf("tput fidelity %s: %+v", f.Path, f)
		}
		t.Logf("tput %s: probe %.2f Gbit/s, iperf3 %.2f Gbit/s, ratio %.2f", f.Path,
			f.ProbeBps/1e9, f.Iperf3Bps/1e9, f.Ratio)
	}
	if dir := os.Getenv("HYBRIDLAB_BENCH_OUT"); dir != "" {
		if err := res.WriteJSON(dir); err != nil {
			t.Fatal(err)
		}
	}
}

func buildProbe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "probe")
	out, err := exec.Command("go", "build", "-o", bin, "hybridlab/probes/cmd/probe").
		CombinedOutput()
	if err != nil {
		t.Fatalf("build probe: %v: %s", err, out)
	}
	return bin
}

func TestRunPacedVeth(t *testing.T) {
	requireRoot(t)
	v := upVeth(t)
	cfg := Config{Paths: []Path{VethPath(v, PathOptions{})}, Protos: []string{"udp"},
		Repetitions: 2, Count: 200, Warmup: 10, Mode: Paced, Interval: 200 * time.Microsecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	row := res.LatencyFor("veth", "udp", 64)
	// Omission correction may add synthetic samples, never remove real ones.
	if row.Merged.Samples < 400 || row.Merged.P50Us <= 0 || res.Settings.IntervalUs != 200 {
		t.Errorf("paced row %+v, settings %+v", row.Merged, res.Settings)
	}
	t.Logf("paced veth udp: p50 %.1fµs p99 %.1fµs over %d samples", row.Merged.P50Us,
		row.Merged.P99Us, row.Merged.Samples)
}
