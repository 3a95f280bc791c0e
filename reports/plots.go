package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"hybridlab/bench"
)

// palette is a colour-blind-safe set (Okabe–Ito) for paths and percentiles.
var palette = []color.Color{
	color.RGBA{0x00, 0x72, 0xB2, 0xff}, color.RGBA{0xE6, 0x9F, 0x00, 0xff},
	color.RGBA{0x00, 0x9E, 0x73, 0xff}, color.RGBA{0xCC, 0x79, 0xA7, 0xff},
	color.RGBA{0x56, 0xB4, 0xE9, 0xff}, color.RGBA{0xD5, 0x5E, 0x00, 0xff},
	color.RGBA{0xF0, 0xE4, 0x42, 0xff}, color.RGBA{0x00, 0x00, 0x00, 0xff},
}

func colorAt(i int) color.Color { return palette[i%len(palette)] }

// svgOf renders p as an inline <svg> element (the XML prologue removed).
func svgOf(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", fmt.Errorf("render plot %q: %w", p.Title.Text, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("render plot %q: %w", p.Title.Text, err)
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return template.HTML(s), nil //nolint:gosec // produced by vgsvg from numbers and names
}

func newPlot(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Y.Label.Text = ylabel
	// Top right, inside the decade of headroom above the data. (A long rotated Y label makes
	// gonum reserve a band under the title, hence the short one.)
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Points(8)
	p.Legend.YOffs = -vg.Points(6)
	p.Add(plotter.NewGrid())
	for _, ts := range []*text.Style{&p.Title.TextStyle, &p.X.Label.TextStyle,
		&p.Y.Label.TextStyle, &p.X.Tick.Label, &p.Y.Tick.Label, &p.Legend.TextStyle} {
		ts.Font.Variant = "Sans"
	}
	return p
}

// headroom raises the top of a log axis by one decade above max so the legend, drawn at the
// top, does not cover the data.
func headroom(p *plot.Plot, max float64) {
	headroomN(p, max, 1)
}

// headroomN is headroom with n decades, for a legend of many entries.
func headroomN(p *plot.Plot, max float64, n int) {
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(max))+float64(n))
}

// barPercentiles are the percentiles drawn as bars for each path.
var barPercentiles = []struct {
	label string
	value func(l bench.Latency) float64
}{
	{"p50", func(l bench.Latency) float64 { return l.Merged.P50Us }},
	{"p90", func(l bench.Latency) float64 { return l.Merged.P90Us }},
	{"p99", func(l bench.Latency) float64 { return l.Merged.P99Us }},
	{"p99.9", func(l bench.Latency) float64 { return l.Merged.P999Us }},
}

// percentileBars draws grouped bars (one group per path, one bar per percentile) on a log
// latency axis, so that a 10 µs floor and a 2 ms VM path are both readable.
func percentileBars(rows []bench.Latency, proto string, size int) (*plot.Plot, error) {
	var sel []bench.Latency
	for _, l := range rows {
		if l.Proto == proto && l.Size == size && l.Merged.Samples > 0 {
			sel = append(sel, l)
		}
	}
	p := newPlot(fmt.Sprintf("%s, %d-byte requests: latency percentiles per path",
		strings.ToUpper(proto), size), "RTT µs (log)")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	names := make([]string, len(sel))
	for i, l := range sel {
		names[i] = l.Path
	}
	if len(sel) == 0 {
		return p, nil
	}
	// A log axis has no zero, so every bar stands on an invisible base bar reaching the
	// decade below the smallest value.
	base := logFloor(sel)
	baseVals := make(plotter.Values, len(sel))
	for i := range baseVals {
		baseVals[i] = base
	}
	w := vg.Points(14)
	for j, bp := range barPercentiles {
		vals := make(plotter.Values, len(sel))
		for i, l := range sel {
			vals[i] = math.Max(bp.value(l)-base, 0)
		}
		floor, err := plotter.NewBarChart(baseVals, w)
		if err != nil {
			return nil, fmt.Errorf("bar chart base: %w", err)
		}
		floor.Color, floor.LineStyle.Width = nil, 0
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, fmt.Errorf("bar chart %s: %w", bp.label, err)
		}
		bars.StackOn(floor)
		bars.Color = colorAt(j)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(j-len(barPercentiles)/2)*w + w/2
		p.Add(bars)
		p.Legend.Add(bp.label, bars)
	}
	p.Y.Min = base
	top := 0.0
	for _, l := range sel {
		top = math.Max(top, l.Merged.P999Us)
	}
	headroom(p, top)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(sel))-0.4
	if len(sel) > 6 {
		// Many path names side by side overlap: slant them.
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	return p, nil
}

// logFloor is the power of ten at or below the smallest p50 of rows (at least 0.1 µs), one
// decade lower when that p50 would be a bar less than twice its base.
func logFloor(rows []bench.Latency) float64 {
	lowest := math.Inf(1)
	for _, l := range rows {
		lowest = math.Min(lowest, l.Merged.P50Us)
	}
	lowest = math.Max(lowest, 0.1)
	base := math.Pow(10, math.Floor(math.Log10(lowest)))
	if lowest < 2*base {
		base /= 10
	}
	return base
}

// nines maps a percentile to the "number of nines" axis: p90 → 1, p99 → 2, p99.9 → 3.
func nines(pct float64) float64 {
	const maxNines = 4
	if pct >= 100 {
		return maxNines + 0.6
	}
	return math.Min(-math.Log10(1-pct/100), maxNines)
}

// spectrumTicks label the nines axis with percentiles.
var spectrumTicks = plot.ConstantTicks{
	{Value: 0, Label: "p0"}, {Value: nines(50), Label: "p50"}, {Value: 1, Label: "p90"},
	{Value: 2, Label: "p99"}, {Value: 3, Label: "p99.9"}, {Value: 4, Label: "p99.99"},
	{Value: nines(100), Label: "max"},
}

// spectrum draws each path's latency against percentile on a nines axis, so the tail is as
// wide as the body: the percentile-spectrum form of a CDF.
func spectrum(rows []bench.Latency, proto string, size int) (*plot.Plot, error) {
	p := newPlot(fmt.Sprintf("%s, %d-byte requests: percentile spectrum",
		strings.ToUpper(proto), size), "RTT µs (log)")
	p.X.Label.Text = "percentile"
	p.X.Tick.Marker = spectrumTicks
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	i, top := 0, 0.0
	for _, l := range rows {
		if l.Proto != proto || l.Size != size || len(l.Spectrum) == 0 {
			continue
		}
		pts := make(plotter.XYs, 0, len(l.Spectrum))
		for _, sp := range l.Spectrum {
			pts = append(pts, plotter.XY{X: nines(sp.Percentile), Y: math.Max(sp.Us, 0.1)})
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("spectrum line %s: %w", l.Path, err)
		}
		line.Color = colorAt(i)
		line.Width = vg.Points(2)
		if i >= 4 {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line)
		p.Legend.Add(l.Path, line)
		top = math.Max(top, l.Merged.MaxUs)
		i++
	}
	if top > 0 {
		// The legend lists every path: give it one decade per four entries (figuresFor
		// makes the plot taller for many paths).
		headroomN(p, top, 1+i/4)
	}
	return p, nil
}
