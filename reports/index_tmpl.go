package reports

import "html/template"

var indexFuncs = template.FuncMap{"bar": barWidth, "verdict": verdictClass}

// verdictClass colours a policy cell: ok when observed matches expected, bad otherwise.
func verdictClass(c PolicyCell) string {
	switch {
	case c.Expected == "" || c.Observed == "":
		return "na"
	case c.Expected == c.Observed:
		return "ok"
	}
	return "bad"
}

var indexTmpl = template.Must(template.New("index").Funcs(funcs).Funcs(indexFuncs).Parse(
	`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hybridlab {{.Lab}}</title>` + style + `
<style>.bar{background:#0072B2;height:.8em;display:inline-block;vertical-align:middle}
td.na{color:#888} ol.q>li{margin-bottom:.3em}</style></head><body>
<h1>hybridlab — lab “{{.Lab}}”</h1>
<p class="meta">Report of {{.Generated.Format "2006-01-02 15:04 UTC"}}.
{{if .Counts}}Specs in this run: {{index .Counts "passed"}} passed, {{index .Counts "failed"}}
failed, {{index .Counts "skipped"}} skipped{{if index .Counts "pending"}},
{{index .Counts "pending"}} pending{{end}}.{{end}}</p>
<ol class="q">
<li><a href="#feasibility">Can VMs and containers share one bridge reliably?</a></li>
<li><a href="#addresses">How are address conflicts avoided?</a></li>
<li><a href="#cost">What does each path cost?</a></li>
<li><a href="#isolation">What isolates what?</a></li>
</ol>

<h2 id="feasibility">1. Can VMs and containers share one bridge reliably?</h2>
{{if .SpecErr}}<p>No evidence in this run: {{.SpecErr}}.</p>
{{else if not .Specs}}<p>The JUnit report has no spec matching “{{.FeasibilityFocus}}”.</p>
{{else}}<table><tr><th class="l">outcome</th><th class="l">suite</th><th class="l">spec</th>
<th>time</th><th class="l">message</th></tr>
{{range .Specs}}<tr><td class="l
{{- if eq .Outcome "passed"}} ok{{else if eq .Outcome "failed"}} bad{{end}}">
{{.Outcome}}</td><td class="l">{{.Suite}}</td><td class="wrap">{{.Name}}</td>
<td>{{printf "%.1f s" .Seconds}}</td><td class="wrap">{{.Message}}</td></tr>{{end}}</table>{{end}}

<h2 id="addresses">2. How are address conflicts avoided?</h2>
<p>One plan assigns every address: VMs take MAC-bound DHCP reservations from their block,
containers are pinned in Docker's ip-range, and Docker holds every VM address as an
aux-address, so neither side can hand out the other's addresses.</p>
{{with .LedgerCheck}}{{if .OK}}<p class="ok">Live check: the running lab matches the ledger
({{.Checked}} addresses compared).</p>{{else}}<p class="bad">Live check found
{{len .Problems}} problem(s) ({{.Checked}} addresses compared):</p>
<ul>{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{else}}<p>No live ledger check in this run.</p>{{end}}
{{if .Ledger}}<table><tr><th class="l">address</th><th class="l">owner</th>
<th class="l">note</th></tr>{{range .Ledger}}<tr><td class="l"><code>{{.IP}}</code></td>
<td class="l">{{.Owner}}</td><td class="l">{{.Note}}</td></tr>{{end}}</table>
{{else}}<p>No ledger given.</p>{{end}}

<h2 id="cost">3. What does each path cost?</h2>
{{with .Latency}}<p>Round-trip latency as a multiple of the floor
(<b>{{.Floor}}</b>, two namespaces on a veth pair) measured in the same run, mode
{{.Settings.Mode}}, {{.Settings.Repetitions}} interleaved repetitions.
{{if .Noisy}}<span class="bad">The floor was noisy in this run; treat ratios with
care.</span>{{end}}</p>
<table><tr><th class="l">path</th><th class="l">proto</th><th>size</th><th>p50 µs</th>
<th>p99 µs</th><th>p50 / floor</th><th>p99 / floor</th><th class="l">noisy</th></tr>
{{range .Latency}}<tr{{if eq .Path $.Latency.Floor}} class="floor"{{end}}>
<td class="l">{{.Path}}</td><td class="l">{{.Proto}}</td><td>{{.Size}}</td>
<td>{{us .Merged.P50Us}}</td><td>{{us .Merged.P99Us}}</td><td>{{x .P50Ratio}}</td>
<td>{{x .P99Ratio}}</td><td class="l">{{if .Noisy}}<span class="bad">noisy</span>{{else}}no{{end}}
</td></tr>{{end}}</table>
{{if .Routing}}<p><b>Does bridge-to-bridge routing add latency?</b> Each routed path
(through the host's routing between two lab segments) against the same kind of pair on the
shared bridge, in this run:</p>
<table><tr><th class="l">routed path</th><th class="l">vs</th><th class="l">proto</th>
<th>added p50 µs</th><th>p50 ratio</th><th>p99 ratio</th></tr>
{{range .Routing}}<tr><td class="l">{{.Routed}}</td><td class="l">{{.Shared}}</td>
<td class="l">{{.Proto}}/{{.Size}}</td><td>{{us .AddedUs}}</td><td>{{x .P50Ratio}}</td>
<td>{{x .P99Ratio}}</td></tr>{{end}}</table>{{end}}
{{if .Tput}}<table><tr><th class="l">path</th><th>TCP Gbit/s</th><th>/ floor</th></tr>
{{range .Tput}}<tr><td class="l">{{.Path}}</td><td>{{gbps .Bps.Mean}}</td>
<td>{{x .FloorRatio}}</td></tr>{{end}}</table>{{end}}
{{if $.LatencyLink}}<p>Details, plots, fidelity and environment:
<a href="{{$.LatencyLink}}">{{$.LatencyLink}}</a>.</p>{{end}}
{{else}}<p>No evidence in this run: {{.LatencyErr}}.</p>{{end}}

<h2 id="isolation">4. What isolates what?</h2>
{{with .Policies}}<p>Rows are sources, columns destinations; each cell is expected /
observed.</p>
<table><tr><th class="l">from \ to</th>{{range .To}}<th>{{.}}</th>{{end}}</tr>
{{range $i, $row := .Cells}}<tr><th class="l">{{index $.Policies.From $i}}</th>
{{range $row}}<td class="{{verdict .}}">{{if .Expected}}{{.Expected}}{{else}}—{{end}} /
{{if .Observed}}{{.Observed}}{{else}}—{{end}}</td>{{end}}</tr>{{end}}</table>
{{else}}<p>No policies declared: every node on the bridge may reach every other; the only
isolation is the egress guard that keeps lab traffic on this machine.</p>{{end}}

<h2 id="bringup">Bring-up timings</h2>
{{if .BringupErr}}<p>No evidence in this run: {{.BringupErr}}.</p>{{else}}
<table><tr><th class="l">step</th><th>seconds</th><th class="l"></th></tr>
{{range .Bringup}}<tr><td class="l">{{.Step}}</td><td>{{printf "%.1f" .Seconds}}</td>
<td class="l" style="width:40%"><span class="bar" style="{{bar .Seconds $.BringupSum}}"></span>
</td></tr>{{end}}<tr><th class="l">total</th><th>{{printf "%.1f" .BringupSum}}</th><th></th>
</tr></table>{{end}}

{{if .Links}}<h2>Details</h2><ul>{{range .Links}}<li><a href="{{.Href}}">{{.Title}}</a></li>
{{end}}</ul>{{end}}
</body></html>
`))
