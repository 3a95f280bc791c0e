package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"hybridlab/topology"
)

// Report is the doctor's verdict on one lab.
type Report struct {
	Lab    string `json:"lab"`
	Bridge string `json:"bridge"`
	// Bridges lists every segment's bridge, main first, when the lab is
	// routed.
	Bridges  []string  `json:"bridges,omitempty"`
	Worst    Severity  `json:"worst,omitempty"`
	Findings []Finding `json:"findings"`
}

// NewReport runs every check on s and wraps the findings.
func NewReport(plan *topology.Plan, s *HostState) Report {
	f := Run(plan, s)
	if f == nil {
		f = []Finding{}
	}
	r := Report{Lab: plan.Lab, Bridge: plan.Bridge.Name, Worst: Worst(f), Findings: f}
	if plan.Routed() {
		r.Bridges = plan.Bridges()
	}
	return r
}

// Failed reports whether any finding is an error.
func (r Report) Failed() bool { return r.Worst == Error }

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write doctor report: %w", err)
	}
	return nil
}

// cellWidth bounds the wrapped columns of the table.
const cellWidth = 56

// WriteTable writes the report as a table for a terminal: severity, ID,
// object, evidence and fix, long cells wrapped onto continuation rows.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "SEVERITY\tID\tOBJECT\tEVIDENCE\tFIX\n")
	for _, f := range r.Findings {
		cols := [][]string{
			{string(f.Severity)}, {f.ID}, wrap(f.Object, 32), wrap(f.Evidence, cellWidth),
			wrap(f.Fix, cellWidth),
		}
		for row := 0; row < maxLen(cols); row++ {
			cells := make([]string, len(cols))
			for i, c := range cols {
				if row < len(c) {
					cells[i] = c[row]
				}
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
	}
	fmt.Fprintln(tw, summary(r))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write doctor report: %w", err)
	}
	return nil
}

func summary(r Report) string {
	n := map[Severity]int{}
	for _, f := range r.Findings {
		n[f.Severity]++
	}
	return fmt.Sprintf("lab %s: %d errors, %d warnings, %d notes", r.Lab, n[Error], n[Warn], n[Info])
}

func maxLen(cols [][]string) int {
	m := 0
	for _, c := range cols {
		m = max(m, len(c))
	}
	return m
}

// wrap breaks s into lines of at most width runes at spaces; a word longer
// than width stays whole.
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}
