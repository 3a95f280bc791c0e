package matrix

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// letters are the column letters of each protocol in a cell.
var letters = map[Proto]string{ICMP: "I", TCP: "T", UDP: "U"}

// Print writes m as a table, rows the sources and columns the targets. A cell shows one
// letter per protocol (I, T, U) when its probe succeeded, "x" when it failed and "-" when it
// did not run, then the cell's median round trip in µs (TCP's, else UDP's, else ICMP's).
// Every failed probe follows the table with its error.
func (m Matrix) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "connectivity matrix of lab %q: %d nodes, %s, rr count %d, %.1fs\n",
		m.Lab, len(m.Nodes), protoNames(m.Protos), m.Count, m.Seconds)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "FROM \\ TO")
	for _, to := range m.Nodes {
		fmt.Fprintf(tw, "\t%s", to)
	}
	fmt.Fprintln(tw)
	for _, from := range m.Nodes {
		fmt.Fprint(tw, from)
		for _, to := range m.Nodes {
			fmt.Fprintf(tw, "\t%s", m.cellText(from, to))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	failed := m.Failed()
	fmt.Fprintf(&b, "%d of %d cells pass\n", len(m.Cells)-len(failed), len(m.Cells))
	for _, c := range failed {
		for _, r := range c.Results {
			if !r.OK && !r.Skipped {
				fmt.Fprintf(&b, "  %s -> %s %s: %s\n", c.From, c.To, r.Proto, r.Err)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String is the table Print writes.
func (m Matrix) String() string {
	var b strings.Builder
	_ = m.Print(&b)
	return b.String()
}

func (m Matrix) cellText(from, to string) string {
	if from == to {
		return "."
	}
	c, ok := m.Cell(from, to)
	if !ok {
		return "?"
	}
	var s strings.Builder
	for _, r := range c.Results {
		switch {
		case r.Skipped:
			s.WriteString("-")
		case r.OK:
			s.WriteString(letters[r.Proto])
		default:
			s.WriteString("x")
		}
	}
	if p50 := c.P50Us(); p50 > 0 {
		fmt.Fprintf(&s, " %.0f", p50)
	}
	return s.String()
}

func protoNames(ps []Proto) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = strings.ToUpper(string(p))
	}
	return strings.Join(names, "/") + " (cell: " + cellLegend(ps) + " p50µs)"
}

func cellLegend(ps []Proto) string {
	var s strings.Builder
	for _, p := range ps {
		s.WriteString(letters[p])
	}
	return s.String()
}

// WriteJSON writes m as indented JSON.
func (m Matrix) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("write matrix of lab %q as JSON: %w", m.Lab, err)
	}
	return nil
}
