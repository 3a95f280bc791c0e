package reports

import (
	"fmt"
	"html/template"
	"math"
)

var funcs = template.FuncMap{
	"us": func(v float64) string {
		switch {
		case v == 0:
			return "—"
		case v >= 1000:
			return fmt.Sprintf("%.0f", v)
		case v >= 100:
			return fmt.Sprintf("%.1f", v)
		default:
			return fmt.Sprintf("%.2f", v)
		}
	},
	"x": func(v float64) string {
		if v == 0 || math.IsNaN(v) {
			return "—"
		}
		return fmt.Sprintf("%.2f×", v)
	},
	"pct":  func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"gbps": func(v float64) string { return fmt.Sprintf("%.2f", v/1e9) },
	"secs": func(v float64) string { return fmt.Sprintf("%.1f s", v) },
	"pm": func(half float64) string {
		if half == 0 {
			return ""
		}
		return fmt.Sprintf(" ± %.2f", half)
	},
}

const style = `<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
  margin:2em auto;max-width:1100px;padding:0 1em;color:#1b1b1b}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:1.8em;border-bottom:1px solid #ddd;
  padding-bottom:.2em} .meta{color:#555}
table{border-collapse:collapse;margin:.6em 0 1em} th,td{padding:.25em .6em;
  border-bottom:1px solid #e3e3e3;text-align:right;white-space:nowrap}
th{background:#f4f6f8;font-weight:600} td.l,th.l{text-align:left}
tr.floor td{background:#f1f8ff} td.wrap{white-space:normal;text-align:left}
.bad{color:#b00020;font-weight:600} .ok{color:#17702f}
.warn{background:#fff4e5;border-left:4px solid #e69f00;padding:.5em .8em;margin:1em 0}
figure{margin:1em 0} figcaption{color:#555;font-size:.9em} svg{max-width:100%;height:auto}
code{background:#f4f4f4;padding:0 .2em}
</style>`

var latencyTmpl = template.Must(template.New("latency").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hybridlab latency</title>` + style + `
</head><body>
<h1>Path latency</h1>
<p class="meta">Measured {{.R.Started.Format "2006-01-02 15:04:05 UTC"}} in {{secs .R.DurationS}}.
{{.R.Settings.Repetitions}} repetitions × {{.R.Settings.Count}} requests per path, protocol and
size ({{.R.Settings.Warmup}} warm-up requests discarded each), mode <b>{{.R.Settings.Mode}}</b>
{{- if .R.Settings.IntervalUs}} with one request every {{us .R.Settings.IntervalUs}} µs
(coordinated-omission corrected){{end}}. Repetitions were interleaved across paths
(A B C A B C …). Ratios divide by the floor path <b>{{.R.Floor}}</b> measured in this run.</p>
{{if .R.Noisy}}<div class="warn"><b>Noisy run.</b> The floor's p50 varied more than allowed
across repetitions, so ratios are less certain than the tables suggest:
<ul>{{range .R.Noise}}{{if .Noisy}}<li>{{.Message}}</li>{{end}}{{end}}</ul></div>{{end}}

<h2>Latency per path (µs, round trip)</h2>
<table><tr><th class="l">path</th><th class="l">proto</th><th>size</th><th>p50</th><th>p90</th>
<th>p99</th><th>p99.9</th><th>max</th><th>mean ± 95% CI</th><th>p50 ± 95% CI</th>
<th>p50 / floor</th><th>p99 / floor</th><th>errors</th><th class="l">noisy</th></tr>
{{range .R.Latency}}<tr{{if eq .Path $.R.Floor}} class="floor"{{end}}>
<td class="l">{{.Path}}</td><td class="l">{{.Proto}}</td><td>{{.Size}}</td>
<td>{{us .Merged.P50Us}}</td><td>{{us .Merged.P90Us}}</td><td>{{us .Merged.P99Us}}</td>
<td>{{us .Merged.P999Us}}</td><td>{{us .Merged.MaxUs}}</td>
<td>{{us .MeanCI.Mean}}{{pm .MeanCI.HalfWidth}}</td>
<td>{{us .P50CI.Mean}}{{pm .P50CI.HalfWidth}}</td>
<td>{{x .P50Ratio}}</td><td>{{x .P99Ratio}}</td>
<td{{if .Errors}} class="bad"{{end}}>{{.Errors}}</td>
<td class="l">{{if .Noisy}}<span class="bad">noisy</span>{{else}}no{{end}}</td></tr>
{{end}}</table>
<p class="meta">Percentiles come from the HDR histograms of all repetitions merged; the
confidence intervals (Student's t) are of the per-repetition p50 and mean.</p>

{{if .R.Routing}}<h2>Bridge-to-bridge routing vs the shared bridge</h2>
<p>Each routed path crosses the host's routing between two lab segments (two bridges); its
counterpart is the same kind of pair on one shared bridge, measured in this run.</p>
<table><tr><th class="l">routed path</th><th class="l">shared-bridge path</th>
<th class="l">proto</th><th>size</th><th>routed p50</th><th>shared p50</th><th>added p50 (µs)</th>
<th>p50 ratio</th><th>p99 ratio</th><th class="l">noisy</th></tr>
{{range .R.Routing}}<tr><td class="l">{{.Routed}}</td><td class="l">{{.Shared}}</td>
<td class="l">{{.Proto}}</td><td>{{.Size}}</td><td>{{us .RoutedUs}}</td><td>{{us .SharedUs}}</td>
<td>{{us .AddedUs}}</td><td>{{x .P50Ratio}}</td><td>{{x .P99Ratio}}</td>
<td class="l">{{if .Noisy}}<span class="bad">noisy</span>{{else}}no{{end}}</td></tr>
{{end}}</table>{{end}}

<h2>Noise gate</h2>
<p>The floor's per-repetition p50 is noisy when its coefficient of variation (sample standard
deviation / mean) exceeds the limit; the range (max − min) / median is shown alongside.</p>
<table><tr><th class="l">proto</th><th>size</th><th>floor p50 CV</th><th>range / median</th>
<th>limit</th><th class="l">verdict</th></tr>
{{range .R.Noise}}<tr><td class="l">{{.Proto}}</td><td>{{.Size}}</td><td>{{pct .Floor.CV}}</td>
<td>{{pct .Floor.Spread}}</td><td>{{pct .Limit}}</td>
<td class="wrap">{{if .Noisy}}<span class="bad">noisy</span>{{if .Message}} — {{.Message}}{{end}}
{{else}}<span class="ok">steady</span>{{end}}</td></tr>{{end}}</table>

<h2>Plots</h2>
{{range .Figures}}<figure>{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}

{{if .R.Tput}}<h2>Throughput (probe tput, TCP)</h2>
<table><tr><th class="l">path</th><th>Gbit/s (mean ± 95% CI)</th><th>repetitions</th>
<th>/ floor</th></tr>
{{range .R.Tput}}<tr{{if eq .Path $.R.Floor}} class="floor"{{end}}><td class="l">{{.Path}}</td>
<td>{{gbps .Bps.Mean}}{{if .Bps.HalfWidth}} ± {{gbps .Bps.HalfWidth}}{{end}}</td>
<td>{{.Bps.N}}</td><td>{{x .FloorRatio}}</td></tr>{{end}}</table>{{end}}

<h2>Probe fidelity</h2>
{{if or .R.Fidelity .R.TputFid}}
<p>The probe and the reference tool ran alternately on the same path; values are medians.
Targets: probe p50 ≤ {{index .Targets 0}}× sockperf, p99 ≤ {{index .Targets 1}}×.</p>
<table><tr><th class="l">path</th><th class="l">proto</th><th>size</th><th>probe p50</th>
<th>sockperf p50</th><th>p50 ratio</th><th>probe p99</th><th>sockperf p99</th>
<th>p99 ratio</th><th class="l">note</th></tr>
{{range .R.Fidelity}}<tr><td class="l">{{.Path}}</td><td class="l">{{.Proto}}</td>
<td>{{.Size}}</td><td>{{us .ProbeP50Us}}</td><td>{{us .SockperfP50Us}}</td>
<td class="{{if .P50OK}}ok{{else}}bad{{end}}">{{x .P50Ratio}}</td>
<td>{{us .ProbeP99Us}}</td><td>{{us .SockperfP99Us}}</td>
<td class="{{if .P99OK}}ok{{else}}bad{{end}}">{{x .P99Ratio}}</td>
<td class="wrap">{{.Error}}</td></tr>{{end}}</table>
{{if .R.TputFid}}<table><tr><th class="l">path</th><th>probe Gbit/s</th><th>iperf3 Gbit/s</th>
<th>probe / iperf3</th><th class="l">note</th></tr>
{{range .R.TputFid}}<tr><td class="l">{{.Path}}</td><td>{{gbps .ProbeBps}}</td>
<td>{{gbps .Iperf3Bps}}</td><td>{{x .Ratio}}</td><td class="wrap">{{.Error}}</td></tr>{{end}}
</table>{{end}}
{{else}}<p>Not measured in this run.</p>{{end}}

<h2>Paths</h2>
<table><tr><th class="l">path</th><th class="l">description</th><th class="l">targets</th></tr>
{{range .R.Paths}}<tr><td class="l">{{.Name}}</td><td class="l">{{.Description}}</td>
<td class="l"><code>{{.Targets.TCP}}</code> <code>{{.Targets.UDP}}</code></td></tr>{{end}}
</table>

<h2>Environment</h2>
<table>{{range .Env}}<tr><th class="l">{{index . 0}}</th><td class="l">{{index . 1}}</td></tr>
{{end}}<tr><th class="l">br_netfilter</th><td class="l">{{range .Sysctls}}<code>{{.}}</code><br>
{{end}}</td></tr></table>
{{if .R.Env.Problems}}<p class="meta">Not captured:
{{range .R.Env.Problems}}{{.}}; {{end}}</p>{{end}}
{{if .R.Problems}}<h2>Problems</h2><ul>{{range .R.Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
`))
