package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot/vg"

	"hybridlab/bench"
)

// LatencyHTML and LatencyJSON are the file names WriteLatency writes.
const (
	LatencyHTML = "latency.html"
	LatencyJSON = "latency.json"
)

// figure is one inline plot with its caption.
type figure struct {
	Caption string
	SVG     template.HTML
}

type latencyPage struct {
	R        *bench.Result
	Figures  []figure
	Env      [][2]string
	Sysctls  []string
	Targets  [2]float64
	Problems []string
}

// WriteLatency writes dir/latency.json and dir/latency.html for res, creating dir. The HTML
// holds the latency table (per path × protocol × size), percentile bars and a percentile
// spectrum per protocol and size as inline SVG, the noise gate, throughput, the fidelity
// comparison with sockperf and iperf3, and the environment.
func WriteLatency(dir string, res *bench.Result) error {
	if err := res.WriteJSON(dir); err != nil {
		return err
	}
	page, err := newLatencyPage(res)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := latencyTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("render %s: %w", LatencyHTML, err)
	}
	return writeFile(filepath.Join(dir, LatencyHTML), buf.Bytes())
}

func newLatencyPage(res *bench.Result) (*latencyPage, error) {
	page := &latencyPage{R: res, Env: envRows(res.Env),
		Targets: [2]float64{bench.FidelityP50Target, bench.FidelityP99Target}}
	for _, proto := range res.Settings.Protos {
		for _, size := range res.Settings.Sizes {
			figs, err := figuresFor(res.Latency, proto, size)
			if err != nil {
				return nil, err
			}
			page.Figures = append(page.Figures, figs...)
		}
	}
	for k, v := range res.Env.BrNetfilter {
		page.Sysctls = append(page.Sysctls, k+" = "+v)
	}
	sort.Strings(page.Sysctls)
	return page, nil
}

func figuresFor(rows []bench.Latency, proto string, size int) ([]figure, error) {
	bars, err := percentileBars(rows, proto, size)
	if err != nil {
		return nil, err
	}
	barSVG, err := svgOf(bars, 7*vg.Inch, 3.6*vg.Inch)
	if err != nil {
		return nil, err
	}
	spec, err := spectrum(rows, proto, size)
	if err != nil {
		return nil, err
	}
	height := 3.6 * vg.Inch
	if n := countPaths(rows, proto, size); n > 6 {
		height += vg.Length(n-6) * 0.3 * vg.Inch // room for the longer legend
	}
	specSVG, err := svgOf(spec, 7*vg.Inch, height)
	if err != nil {
		return nil, err
	}
	return []figure{
		{fmt.Sprintf("%s/%d: p50, p90, p99 and p99.9 of every path (merged repetitions)",
			proto, size), barSVG},
		{fmt.Sprintf("%s/%d: latency at every percentile; the right edge is the tail",
			proto, size), specSVG},
	}, nil
}

func envRows(e bench.Environment) [][2]string {
	rows := [][2]string{
		{"kernel", e.Kernel + " (" + e.Machine + ")"},
		{"CPUs", fmt.Sprint(e.CPUs)},
		{"accelerator", orDash(e.Accelerator)},
		{"Go", e.GoVersion},
		{"nftables rules (whole ruleset)", fmt.Sprint(e.NftRules)},
		{"iptables FORWARD policy", orDash(e.ForwardPolicy)},
	}
	for _, i := range e.Interfaces {
		where := i.Netns
		if where == "" {
			where = "host"
		}
		val := fmt.Sprintf("MTU %d", i.MTU)
		if len(i.Offloads) > 0 {
			val += "; " + offloadSummary(i.Offloads)
		}
		if i.Error != "" {
			val = i.Error
		}
		rows = append(rows, [2]string{fmt.Sprintf("interface %s (%s)", i.Name, where), val})
	}
	return rows
}

// offloadSummary abbreviates the ethtool features: "tso on, gso on, gro on, …".
func offloadSummary(o map[string]string) string {
	short := map[string]string{"rx-checksumming": "rx-csum", "tx-checksumming": "tx-csum",
		"scatter-gather": "sg", "tcp-segmentation-offload": "tso",
		"generic-segmentation-offload": "gso", "generic-receive-offload": "gro",
		"large-receive-offload": "lro", "rx-gro-hw": "gro-hw",
		"rx-udp-gro-forwarding": "udp-gro-fwd"}
	var parts []string
	for k, v := range o {
		name := short[k]
		if name == "" {
			name = k
		}
		parts = append(parts, name+" "+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func writeFile(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return fmt.Errorf("create report dir for %q: %w", name, err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	return nil
}

// countPaths counts the rows of one protocol and size.
func countPaths(rows []bench.Latency, proto string, size int) int {
	n := 0
	for _, l := range rows {
		if l.Proto == proto && l.Size == size {
			n++
		}
	}
	return n
}
