package graph

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"sync"

	"github.com/goccy/go-graphviz"

	"hybridlab/topology"
)

// Formats Render writes.
const (
	FormatDOT  = "dot"
	FormatSVG  = "svg"
	FormatHTML = "html"
)

// Render writes the plan as format: "dot" (the DOT source), "svg" (laid
// out by Graphviz's dot engine) or "html" (a self-contained page with the
// SVG and a table of the plan's nodes). A render takes about 10 ms.
// go-graphviz compiles its WebAssembly module when the package is
// initialised, not here: about 0.7 s on a 2-core host the first time, then
// about 40 ms from its cache in $TMPDIR/go-graphviz, paid by every binary
// that imports this package. Render is safe for concurrent use; renders run
// one at a time.
func Render(ctx context.Context, p *topology.Plan, format string, w io.Writer,
	opts Options) error {
	src, err := DOT(p, opts)
	if err != nil {
		return err
	}
	switch format {
	case FormatDOT:
		_, err = io.WriteString(w, src)
	case FormatSVG:
		var svg []byte
		if svg, err = renderSVG(ctx, src); err == nil {
			_, err = w.Write(svg)
		}
	case FormatHTML:
		err = renderHTML(ctx, p, src, w, opts)
	default:
		return fmt.Errorf("draw lab %q: unknown format %q; use dot, svg or html", p.Lab, format)
	}
	if err != nil {
		return fmt.Errorf("draw lab %q as %s: %w", p.Lab, format, err)
	}
	return nil
}

// renderMu serialises renders: go-graphviz runs one WebAssembly instance
// for the whole process, and concurrent calls into it crash.
var renderMu sync.Mutex

func renderSVG(ctx context.Context, src string) ([]byte, error) {
	renderMu.Lock()
	defer renderMu.Unlock()

	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("start graphviz: %w", err)
	}
	defer gv.Close()

	g, err := graphviz.ParseBytes([]byte(src))
	if err != nil {
		return nil, fmt.Errorf("parse dot: %w", err)
	}
	defer g.Close()

	var buf bytes.Buffer
	if err := gv.Render(ctx, g, graphviz.SVG, &buf); err != nil {
		return nil, fmt.Errorf("lay out and render svg: %w", err)
	}
	return buf.Bytes(), nil
}

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hybridlab lab {{.Plan.Lab}}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #111827; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { border: 1px solid #d1d5db; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f4f6; }
td.mono { font-family: monospace; }
.up { color: #15803d; font-weight: bold; } .down { color: #b91c1c; font-weight: bold; }
</style>
</head>
<body>
<h1>hybridlab lab {{.Plan.Lab}}</h1>
{{- if .Plan.Routed}}
<p>segments routed by the host:
{{- range $i, $s := .Plan.AllSegments}}{{if $i}};{{end}} {{$s.Name}}: subnet {{$s.Subnet}},
gateway {{$s.Gateway}} on bridge {{$s.Bridge.Name}}{{end}};
domain {{.Plan.Domain}}, nft table {{.Plan.NFTable}}</p>
{{- else}}
<p>subnet {{.Plan.Subnet}}, gateway {{.Plan.Gateway}} on bridge {{.Plan.Bridge.Name}},
domain {{.Plan.Domain}}, nft table {{.Plan.NFTable}}</p>
{{- end}}
{{.SVG}}
<table>
<tr><th>name</th><th>kind</th><th>role</th>{{if .Plan.Routed}}<th>segment</th>{{end}}
<th>ip</th><th>mac</th><th>dns</th><th>object</th>
{{- if .Status}}<th>state</th>{{end}}</tr>
{{- range .Plan.Nodes}}
<tr><td>{{.Name}}</td><td>{{.Kind}}</td><td>{{.Role}}</td>
{{- if $.Plan.Routed}}<td>{{($.Plan.SegmentOf .).Name}}</td>{{end}}<td class="mono">{{.IP}}</td>
<td class="mono">{{.MAC}}</td><td>{{.DNS}}</td><td>{{.Object}}</td>
{{- if $.Status}}{{with index $.State .Name}}<td class="{{.}}">{{.}}</td>
{{- else}}<td></td>{{end}}{{end}}</tr>
{{- end}}
</table>
</body>
</html>
`))

func renderHTML(ctx context.Context, p *topology.Plan, src string, w io.Writer,
	opts Options) error {
	svg, err := renderSVG(ctx, src)
	if err != nil {
		return err
	}
	// Graphviz starts its SVG with an XML prolog and doctype, which are not
	// allowed inside an HTML body.
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	state := map[string]string{}
	for name, up := range opts.Status {
		state[name] = map[bool]string{true: "up", false: "down"}[up]
	}
	return page.Execute(w, struct {
		Plan   *topology.Plan
		SVG    template.HTML
		Status bool
		State  map[string]string
	}{p, template.HTML(svg), opts.Status != nil, state})
}
