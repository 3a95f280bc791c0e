package graph_test

import (
	"bytes"
	"context"
	"flag"
	"html"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hybridlab/graph"
	"hybridlab/topology"
)

var (
	update = flag.Bool("update", false, "rewrite golden files in testdata/")
	out    = flag.String("out", "", "also write the default lab's SVG to this file")
)

func defaultPlan(t testing.TB) *topology.Plan {
	t.Helper()
	lab, err := topology.Load("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// singlePlan is the default lab without its segments: one bridge, one
// subnet. Its pictures are those of the lab before segments existed.
func singlePlan(t testing.TB) *topology.Plan {
	t.Helper()
	lab, err := topology.Load("")
	if err != nil {
		t.Fatal(err)
	}
	lab.Segments = nil
	var ctrs []topology.Container
	for _, c := range lab.Containers {
		if c.Segment == "" || c.Segment == topology.MainSegment {
			ctrs = append(ctrs, c)
		}
	}
	lab.Containers = ctrs
	var vms []topology.VM
	for _, vm := range lab.VMs {
		if vm.Segment == "" || vm.Segment == topology.MainSegment {
			vms = append(vms, vm)
		}
	}
	lab.VMs = vms
	p, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	if p.Routed() {
		t.Fatal("single-segment plan is routed")
	}
	return p
}

func TestDOTGolden(t *testing.T) {
	status := graph.Options{Status: map[string]bool{
		"base1": true, "docker1": false, "web": true, "db": false, "edge1": true}}
	tests := []struct {
		golden string
		plan   func(testing.TB) *topology.Plan
		opts   graph.Options
	}{
		{"default.dot", defaultPlan, graph.Options{}},
		{"default-status.dot", defaultPlan, status},
		{"single.dot", singlePlan, graph.Options{}},
		{"single-status.dot", singlePlan, status},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := graph.DOT(tt.plan(t), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./graph -update)", err)
			}
			if got != string(want) {
				t.Errorf("DOT differs from %s; rerun with -update if intended:\n%s", path, got)
			}
		})
	}
}

func TestRenderSVG(t *testing.T) {
	p := defaultPlan(t)
	var buf bytes.Buffer
	start := time.Now()
	if err := graph.Render(context.Background(), p, graph.FormatSVG, &buf,
		graph.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("rendered %d bytes of SVG in %v", buf.Len(), time.Since(start))
	// Graphviz writes '-' as "&#45;" in SVG text.
	svg := html.UnescapeString(buf.String())
	if !strings.Contains(svg, "<svg") {
		t.Fatalf("output is not SVG: %.200s", svg)
	}
	for _, n := range p.Nodes {
		for _, want := range []string{n.Name, n.IP.String(), n.MAC, n.DNS} {
			if !strings.Contains(svg, ">"+want+"<") {
				t.Errorf("SVG lacks %s's %q as text", n.Name, want)
			}
		}
	}
	wants := []string{p.NFTable, p.Management.Network}
	for _, s := range p.AllSegments() {
		wants = append(wants, "bridge "+s.Bridge.Name, s.Gateway.String(),
			s.Bridge.Address.String(), "segment "+s.Name+" (subnet "+s.Subnet.String()+")")
	}
	for _, want := range wants {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRenderHTML(t *testing.T) {
	p := defaultPlan(t)
	var buf bytes.Buffer
	opts := graph.Options{Status: map[string]bool{"web": false}}
	if err := graph.Render(context.Background(), p, graph.FormatHTML, &buf, opts); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"<!DOCTYPE html>", "<svg", `<td class="down">down</td>`,
		"<td>hybrid-web</td>", "<th>segment</th>", "<td>edge</td>",
		"edge: subnet 10.0.20.0/24,\ngateway 10.0.20.1 on bridge br-hybrid-edge"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<?xml") {
		t.Error("page embeds the SVG's XML prolog")
	}
}

func TestRenderConcurrent(t *testing.T) {
	p := defaultPlan(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var buf bytes.Buffer
			if err := graph.Render(context.Background(), p, graph.FormatSVG, &buf,
				graph.Options{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestRenderUnknownFormat(t *testing.T) {
	err := graph.Render(context.Background(), defaultPlan(t), "png", &bytes.Buffer{},
		graph.Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown format "png"; use dot, svg or html`) {
		t.Fatalf("error %v, want one naming the format and the choices", err)
	}
}

func BenchmarkRenderSVG(b *testing.B) {
	p := defaultPlan(b)
	for b.Loop() {
		if err := graph.Render(context.Background(), p, graph.FormatSVG, &bytes.Buffer{},
			graph.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
