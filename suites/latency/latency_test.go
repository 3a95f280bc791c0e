package latency_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gmeasure"

	"hybridlab/bench"
	"hybridlab/probes/remote"
	"hybridlab/provision"
	"hybridlab/provision/accel"
	"hybridlab/reports"
	"hybridlab/suites/labctl"
	"hybridlab/suites/labels"
	"hybridlab/topology"
)

// runTimeout bounds the whole measurement: 8 paths x 2 protocols x 5
// repetitions of 2,000 requests, plus throughput and the sockperf/iperf3
// fidelity runs on the floor.
const runTimeout = 20 * time.Minute

var _ = Describe("latency of lab paths", labels.Latency, labels.Perf, labels.Root,
	labels.Docker, labels.VM, labels.Slow, Serial, Ordered, func() {
		var (
			res *bench.Result
			out string
		)

		BeforeAll(func() {
			lab.Up(true)
			lab.WaitVMs()
			out = filepath.Join(labctl.RepoRoot(), "reports", "out")
			Expect(os.MkdirAll(out, 0o755)).To(Succeed())
		})

		It("measures every path against the veth floor in one interleaved run", func(ctx SpecContext) {
			veth := bench.DefaultVeth()
			Expect(veth.Up(ctx)).To(Succeed())
			DeferCleanup(func() { _ = veth.Down(context.Background()) })

			paths := append([]bench.Path{
				bench.LoopbackPath(bench.PathOptions{ProbeBinary: labctl.Agent()}),
				bench.VethPath(veth, bench.PathOptions{ProbeBinary: labctl.Agent(), Tools: true}),
			}, labPaths(lab)...)
			By(fmt.Sprintf("measuring %d paths, TCP and UDP, interleaved", len(paths)))
			var err error
			res, err = bench.Run(ctx, bench.Config{
				Paths:               paths,
				Repetitions:         5,
				Count:               2000,
				Warmup:              200,
				TputDuration:        time.Second,
				TputRepetitions:     2,
				FidelityRepetitions: 3,
				Accelerator:         accelerator(),
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Problems).To(BeEmpty(), "failed trials")
			recordExperiment(res)
		}, SpecTimeout(runTimeout))

		It("reports each path as a ratio to the floor", func() {
			for _, l := range res.Latency {
				Expect(l.Merged.P50Us).To(BeNumerically(">", 0), "%s/%s p50", l.Path, l.Proto)
				Expect(l.P50Ratio).To(BeNumerically(">", 0), "%s/%s ratio", l.Path, l.Proto)
			}
			for _, n := range res.Noise {
				if n.Noisy {
					AddReportEntry("noise gate", fmt.Sprintf("%+v", n))
				}
			}
		})

		It("writes latency.json, latency.html and the lab report", func() {
			Expect(reports.WriteLatency(out, res)).To(Succeed())
			Expect(filepath.Join(out, "latency.json")).To(BeAnExistingFile())
			html, err := os.ReadFile(filepath.Join(out, "latency.html"))
			Expect(err).NotTo(HaveOccurred())
			Expect(string(html)).To(ContainSubstring("<svg"))
			for _, p := range res.Paths {
				Expect(string(html)).To(ContainSubstring(p.Name))
			}

			bringup := filepath.Join(provision.StateDir(lab.Plan.Lab), "bringup.json")
			Expect(reports.WriteIndex(out, reports.IndexInput{
				Lab:         lab.Plan.Lab,
				JUnit:       existing(filepath.Join(out, "junit.xml")),
				Ledger:      lab.Plan.Ledger(),
				LedgerCheck: ledgerCheck(lab.Plan),
				Latency:     filepath.Join(out, "latency.json"),
				Bringup:     existing(bringup),
			})).To(Succeed())
			Expect(filepath.Join(out, "index.html")).To(BeAnExistingFile())
		})
	})

// labPaths are the lab's own paths, all measured with the probe agent each
// node runs (`probe serve` in the image and as a service in the box).
func labPaths(l *labctl.Lab) []bench.Path {
	p := l.Plan
	ctrs, vms := p.Containers(), p.VMs()
	local := remote.Local{Path: labctl.Agent()}
	var out []bench.Path
	if len(ctrs) >= 2 {
		out = append(out,
			bench.RunnerPath("container-container", nil, l.Agent(ctrs[1]), ctrs[0].IP.String()),
			bench.RunnerPath("host-container", nil, local, ctrs[0].IP.String()))
	}
	if len(vms) >= 1 && len(ctrs) >= 1 {
		out = append(out,
			bench.RunnerPath("vm-container", nil, l.Agent(vms[0]), ctrs[0].IP.String()),
			bench.RunnerPath("container-vm", nil, l.Agent(ctrs[0]), vms[0].IP.String()),
			bench.RunnerPath("host-vm", nil, local, vms[0].IP.String()))
	}
	if len(vms) >= 2 {
		out = append(out, bench.RunnerPath("vm-vm", nil, l.Agent(vms[0]), vms[1].IP.String()))
	}
	return append(out, routedPaths(l)...)
}

// routedPaths are the bridge-to-bridge paths of a lab with several segments: a container on
// another segment than the first container (and the first VM) reaches it through the host's
// routing, to compare in the same run with the same pair kinds on one shared bridge.
func routedPaths(l *labctl.Lab) []bench.Path {
	p := l.Plan
	ctrs, vms := p.Containers(), p.VMs()
	if !p.Routed() || len(ctrs) == 0 {
		return nil
	}
	var out []bench.Path
	if far, ok := nodeOffSegment(ctrs, ctrs[0].Segment); ok {
		out = append(out, bench.RunnerPath("container-container-routed", nil, l.Agent(far),
			ctrs[0].IP.String()))
	}
	if len(vms) > 0 {
		if far, ok := nodeOffSegment(ctrs, vms[0].Segment); ok {
			out = append(out,
				bench.RunnerPath("container-vm-routed", nil, l.Agent(far), vms[0].IP.String()),
				bench.RunnerPath("vm-container-routed", nil, l.Agent(vms[0]), far.IP.String()))
		}
		if far, ok := nodeOffSegment(vms, vms[0].Segment); ok {
			out = append(out,
				bench.RunnerPath("vm-vm-routed", nil, l.Agent(vms[0]), far.IP.String()))
		}
	}
	return out
}

// nodeOffSegment returns the first of nodes that is not on segment seg.
func nodeOffSegment(nodes []topology.Node, seg string) (topology.Node, bool) {
	for _, n := range nodes {
		if n.Segment != seg {
			return n, true
		}
	}
	return topology.Node{}, false
}

func recordExperiment(res *bench.Result) {
	exp := gmeasure.NewExperiment("latency")
	AddReportEntry(exp.Name, exp)
	for _, l := range res.Latency {
		name := fmt.Sprintf("%s/%s/%d", l.Path, l.Proto, l.Size)
		exp.RecordValue(name+" p50", l.Merged.P50Us, gmeasure.Units("µs"), gmeasure.Precision(1))
		exp.RecordValue(name+" p99", l.Merged.P99Us, gmeasure.Units("µs"), gmeasure.Precision(1))
		exp.RecordValue(name+" p50/floor", l.P50Ratio, gmeasure.Precision(2))
	}
	var lines []string
	for _, f := range res.Fidelity {
		lines = append(lines, fmt.Sprintf("%+v", f))
	}
	AddReportEntry("probe vs sockperf", strings.Join(lines, "\n"))
}

func accelerator() string {
	if d, ok := accel.Cached(); ok {
		return string(d.Accel)
	}
	return "none"
}

// ledgerCheck compares the running lab with the plan's ledger.
func ledgerCheck(p *topology.Plan) *reports.LedgerCheck {
	checked, problems := provision.Status(context.Background(), p).LedgerProblems()
	return &reports.LedgerCheck{OK: len(problems) == 0, Checked: checked, Problems: problems}
}

func existing(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
