package reports

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMergeJUnitFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "junit.xml")
	err := MergeJUnit(out, "testdata/junit/feasibility/junit.xml",
		"testdata/junit/dns/junit.xml")
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, out)
}

func TestMergeJUnitDirectory(t *testing.T) {
	// A directory tree as `ginkgo -r --output-dir --keep-separate-reports` leaves it, with a
	// stray non-JUnit .xml file that must be ignored.
	out := filepath.Join(t.TempDir(), "merged.xml")
	if err := MergeJUnit(out, "testdata/junit"); err != nil {
		t.Fatal(err)
	}
	checkMerged(t, out)
}

func checkMerged(t *testing.T, out string) {
	t.Helper()
	m, err := ReadJUnit(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Suites) != 2 || m.Tests != 6 || m.Failures != 1 || m.Disabled != 1 ||
		m.Time != 15.75 {
		t.Errorf("merged totals: %d suites, tests %d failures %d disabled %d time %v",
			len(m.Suites), m.Tests, m.Failures, m.Disabled, m.Time)
	}
	specs := m.Specs()
	outcomes := map[string]int{}
	for _, s := range specs {
		outcomes[s.Outcome]++
	}
	if len(specs) != 6 || outcomes["passed"] != 4 || outcomes["failed"] != 1 ||
		outcomes["skipped"] != 1 {
		t.Errorf("specs %+v", specs)
	}
	for _, s := range specs {
		if s.Outcome == "failed" && s.Message != "Expected ping to succeed" {
			t.Errorf("failure message %q", s.Message)
		}
	}
}

func TestMergeJUnitRejectsNonJUnitFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "x.xml")
	if err := os.WriteFile(bad, []byte("<html></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := MergeJUnit(filepath.Join(t.TempDir(), "o.xml"), bad)
	if !errors.Is(err, ErrNoJUnit) {
		t.Errorf("err = %v, want ErrNoJUnit", err)
	}
	if err := MergeJUnit("o.xml", "testdata/missing.xml"); err == nil {
		t.Error("missing input accepted")
	}
}

func TestReadJUnitSingleSuiteRoot(t *testing.T) {
	f := filepath.Join(t.TempDir(), "one.xml")
	doc := `<testsuite name="go" tests="1"><testcase name="TestX" classname="p" time="0.1">` +
		`</testcase></testsuite>`
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ReadJUnit(f)
	if err != nil || len(s.Specs()) != 1 || s.Specs()[0].Outcome != "passed" {
		t.Errorf("single suite: %+v, %v", s, err)
	}
}
