package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hybridlab/bench"
	"hybridlab/topology"
)

// IndexHTML is the file name WriteIndex writes.
const IndexHTML = "index.html"

// IndexInput is the evidence of one run. File fields are paths; an empty or missing file
// makes its section say that this run has no such evidence.
type IndexInput struct {
	Lab       string
	Generated time.Time // default: now
	// JUnit is a (merged) JUnit report; question 1 lists its specs whose suite or name
	// contains FeasibilityFocus (case-insensitive, default "feasib"), and the page counts all.
	JUnit            string
	FeasibilityFocus string
	// Ledger is the plan's address ledger (topology.Plan.Ledger); LedgerCheck is the result
	// of comparing it with the live lab.
	Ledger      []topology.Reservation
	LedgerCheck *LedgerCheck
	// Latency is a latency.json (default: DIR/latency.json); its page is linked when
	// latency.html sits next to it in DIR.
	Latency  string
	Policies *PolicyMatrix
	// Bringup is a bringup.json: [{"step": "...", "seconds": 1.5}, …].
	Bringup string
	Links   []Link // further detail pages
}

// LedgerCheck is the outcome of checking the live lab against the ledger.
type LedgerCheck struct {
	OK       bool     `json:"ok"`
	Checked  int      `json:"checked"`  // addresses compared
	Problems []string `json:"problems"` // one line per conflict or drift
}

// PolicyMatrix is who may reach whom: Cells[i][j] is the verdict from From[i] to To[j].
type PolicyMatrix struct {
	From  []string
	To    []string
	Cells [][]PolicyCell
}

// PolicyCell holds the declared and the observed verdict ("allow", "deny", or "" when
// not declared / not tested).
type PolicyCell struct {
	Expected string
	Observed string
}

// Link is a detail page.
type Link struct {
	Title string
	Href  string
}

// BringupStep is one timed step of `setup up`.
type BringupStep struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"`
}

type indexPage struct {
	IndexInput
	Specs       []Spec
	SpecErr     string
	Counts      map[string]int
	Latency     *bench.Result
	LatencyErr  string
	LatencyLink string
	Bringup     []BringupStep
	BringupErr  string
	BringupSum  float64
}

// WriteIndex writes dir/index.html answering the lab's four questions with in's evidence:
// (1) can VMs and containers share one bridge reliably (feasibility specs), (2) how address
// conflicts are avoided (ledger and live check), (3) what each path costs (latency ratios),
// (4) what isolates what (policy matrix), plus bring-up timings and links.
func WriteIndex(dir string, in IndexInput) error {
	page := newIndexPage(dir, in)
	var buf bytes.Buffer
	if err := indexTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("render %s: %w", IndexHTML, err)
	}
	return writeFile(filepath.Join(dir, IndexHTML), buf.Bytes())
}

func newIndexPage(dir string, in IndexInput) *indexPage {
	if in.Generated.IsZero() {
		in.Generated = time.Now().UTC()
	}
	if in.FeasibilityFocus == "" {
		in.FeasibilityFocus = "feasib"
	}
	p := &indexPage{IndexInput: in, Counts: map[string]int{}}
	p.loadSpecs()
	p.loadLatency(dir)
	p.loadBringup()
	return p
}

func (p *indexPage) loadSpecs() {
	if p.JUnit == "" {
		p.SpecErr = "no JUnit report was given"
		return
	}
	s, err := ReadJUnit(p.JUnit)
	if err != nil {
		p.SpecErr = err.Error()
		return
	}
	focus := strings.ToLower(p.FeasibilityFocus)
	for _, spec := range s.Specs() {
		p.Counts[spec.Outcome]++
		if strings.Contains(strings.ToLower(spec.Suite+" "+spec.Name), focus) {
			p.Specs = append(p.Specs, spec)
		}
	}
}

func (p *indexPage) loadLatency(dir string) {
	name := p.IndexInput.Latency
	if name == "" {
		name = filepath.Join(dir, LatencyJSON)
	}
	res, err := bench.ReadResult(name)
	if err != nil {
		p.LatencyErr = missing(name, err)
		return
	}
	p.Latency = res
	html := filepath.Join(filepath.Dir(name), LatencyHTML)
	if _, err := os.Stat(html); err == nil {
		if rel, err := filepath.Rel(dir, html); err == nil {
			p.LatencyLink = filepath.ToSlash(rel)
		}
	}
}

func (p *indexPage) loadBringup() {
	if p.IndexInput.Bringup == "" {
		p.BringupErr = "no bringup.json was given"
		return
	}
	data, err := os.ReadFile(p.IndexInput.Bringup)
	if err != nil {
		p.BringupErr = missing(p.IndexInput.Bringup, err)
		return
	}
	if err := json.Unmarshal(data, &p.Bringup); err != nil {
		p.BringupErr = fmt.Sprintf("parse %s: %v", p.IndexInput.Bringup, err)
		return
	}
	for _, s := range p.Bringup {
		p.BringupSum += s.Seconds
	}
}

func missing(name string, err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%s does not exist", name)
	}
	return err.Error()
}

// barWidth is the CSS width of a bring-up step's bar, relative to the whole bring-up.
func barWidth(sec, total float64) template.CSS {
	if total <= 0 {
		return "width:0"
	}
	return template.CSS(fmt.Sprintf("width:%.1f%%", 100*sec/total))
}
