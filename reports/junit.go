package reports

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// JUnitSuites is the root of a JUnit XML report as Ginkgo writes it.
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Tests    int          `xml:"tests,attr"`
	Disabled int          `xml:"disabled,attr"`
	Errors   int          `xml:"errors,attr"`
	Failures int          `xml:"failures,attr"`
	Time     float64      `xml:"time,attr"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one suite of a report.
type JUnitSuite struct {
	Name       string           `xml:"name,attr"`
	Package    string           `xml:"package,attr,omitempty"`
	Tests      int              `xml:"tests,attr"`
	Disabled   int              `xml:"disabled,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Errors     int              `xml:"errors,attr"`
	Failures   int              `xml:"failures,attr"`
	Time       float64          `xml:"time,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Properties *JUnitProperties `xml:"properties,omitempty"`
	Cases      []JUnitCase      `xml:"testcase"`
}

// JUnitProperties holds a suite's properties.
type JUnitProperties struct {
	Property []JUnitProperty `xml:"property"`
}

// JUnitProperty is one name/value property.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitCase is one spec.
type JUnitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Status    string        `xml:"status,attr,omitempty"`
	Time      float64       `xml:"time,attr"`
	Owner     string        `xml:"owner,attr,omitempty"`
	Skipped   *JUnitMessage `xml:"skipped,omitempty"`
	Error     *JUnitMessage `xml:"error,omitempty"`
	Failure   *JUnitMessage `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
	SystemErr string        `xml:"system-err,omitempty"`
	// Properties carry Ginkgo's spec labels and report entries.
	Properties *JUnitProperties `xml:"properties,omitempty"`
}

// JUnitMessage is a failure, error or skip with its message and text.
type JUnitMessage struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// Outcome is "passed", "failed" (failure or error), "skipped" or "pending".
func (c JUnitCase) Outcome() string {
	switch {
	case c.Failure != nil || c.Error != nil:
		return "failed"
	case c.Status == "pending":
		return "pending"
	case c.Skipped != nil || c.Status == "skipped":
		return "skipped"
	case c.Status == "" || c.Status == "passed":
		return "passed"
	}
	return "failed" // Ginkgo's panicked, interrupted, aborted and timedout
}

// ErrNoJUnit is returned when an input holds no JUnit report.
var ErrNoJUnit = errors.New("no JUnit report")

// ReadJUnit reads one JUnit file whose root is <testsuites> or a single <testsuite>.
func ReadJUnit(name string) (*JUnitSuites, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read junit: %w", err)
	}
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse junit %q: %w: %w", name, ErrNoJUnit, err)
	}
	switch root.XMLName.Local {
	case "testsuites":
		var s JUnitSuites
		if err := xml.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("parse junit %q: %w", name, err)
		}
		return &s, nil
	case "testsuite":
		var one JUnitSuite
		if err := xml.Unmarshal(data, &one); err != nil {
			return nil, fmt.Errorf("parse junit %q: %w", name, err)
		}
		return &JUnitSuites{Suites: []JUnitSuite{one}}, nil
	}
	return nil, fmt.Errorf("parse junit %q: root <%s>: %w", name, root.XMLName.Local,
		ErrNoJUnit)
}

// MergeJUnit reads every input — a JUnit XML file, or a directory whose *.xml files (found
// recursively, in name order) are JUnit reports, as `ginkgo -r --output-dir` with
// --keep-separate-reports writes them — and writes one <testsuites> file to out listing
// every suite and spec, with totals recomputed. Directory files that are not JUnit are
// ignored; an input file that is not JUnit is an error. out itself is never read as input.
func MergeJUnit(out string, inputs ...string) error {
	files, err := junitFiles(out, inputs)
	if err != nil {
		return err
	}
	merged := JUnitSuites{}
	for _, f := range files {
		s, err := ReadJUnit(f.name)
		if errors.Is(err, ErrNoJUnit) && f.fromDir {
			continue
		}
		if err != nil {
			return err
		}
		merged.Suites = append(merged.Suites, s.Suites...)
	}
	merged.total()
	data, err := xml.MarshalIndent(merged, "", "  ")
	if err != nil {
		return fmt.Errorf("encode merged junit: %w", err)
	}
	return writeFile(out, append([]byte(xml.Header), append(data, '\n')...))
}

type junitInput struct {
	name    string
	fromDir bool
}

func junitFiles(out string, inputs []string) ([]junitInput, error) {
	outAbs, _ := filepath.Abs(out)
	var files []junitInput
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("merge junit: %w", err)
		}
		if !st.IsDir() {
			files = append(files, junitInput{name: in})
			continue
		}
		var found []string
		err = filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".xml") {
				if abs, _ := filepath.Abs(p); abs != outAbs {
					found = append(found, p)
				}
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("merge junit: walk %q: %w", in, err)
		}
		sort.Strings(found)
		for _, f := range found {
			files = append(files, junitInput{name: f, fromDir: true})
		}
	}
	return files, nil
}

// total recomputes the root's counts from its suites.
func (s *JUnitSuites) total() {
	s.Tests, s.Disabled, s.Errors, s.Failures, s.Time = 0, 0, 0, 0, 0
	for _, st := range s.Suites {
		s.Tests += st.Tests
		s.Disabled += st.Disabled
		s.Errors += st.Errors
		s.Failures += st.Failures
		s.Time += st.Time
	}
}

// Specs lists every spec of s with its suite, in report order.
func (s *JUnitSuites) Specs() []Spec {
	var out []Spec
	for _, st := range s.Suites {
		for _, c := range st.Cases {
			out = append(out, Spec{Suite: st.Name, Name: c.Name, Outcome: c.Outcome(),
				Seconds: c.Time, Message: message(c)})
		}
	}
	return out
}

// Spec is one spec's result.
type Spec struct {
	Suite   string  `json:"suite"`
	Name    string  `json:"name"`
	Outcome string  `json:"outcome"`
	Seconds float64 `json:"seconds"`
	Message string  `json:"message,omitempty"`
}

func message(c JUnitCase) string {
	for _, m := range []*JUnitMessage{c.Failure, c.Error, c.Skipped} {
		if m != nil {
			return firstLine(strings.TrimSpace(m.Message + "\n" + m.Text))
		}
	}
	return ""
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
