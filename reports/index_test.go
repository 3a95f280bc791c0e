package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hybridlab/topology"
)

func defaultLedger(t *testing.T) []topology.Reservation {
	t.Helper()
	lab, err := topology.Load("")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := topology.NewPlan(lab)
	if err != nil {
		t.Fatal(err)
	}
	return plan.Ledger()
}

func TestWriteIndex(t *testing.T) {
	dir := reportDir(t)
	if err := WriteLatency(dir, sampleResult(t)); err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(dir, "junit.xml")
	if err := MergeJUnit(junit, "testdata/junit"); err != nil {
		t.Fatal(err)
	}
	in := IndexInput{
		Lab: "hybrid", JUnit: junit, Ledger: defaultLedger(t),
		LedgerCheck: &LedgerCheck{OK: false, Checked: 9,
			Problems: []string{"10.0.1.252: container client has 02:42:0a:00:01:fb, " +
				"a lease of 10.0.1.252 names 52:54:00:12:34:56"}},
		Policies: &PolicyMatrix{From: []string{"web", "db"}, To: []string{"web", "db"},
			Cells: [][]PolicyCell{{{}, {"allow", "allow"}}, {{"deny", "allow"}, {}}}},
		Bringup: "testdata/bringup.json",
		Links:   []Link{{"merged JUnit report", "junit.xml"}},
	}
	if err := WriteIndex(dir, in); err != nil {
		t.Fatal(err)
	}
	page := readPage(t, filepath.Join(dir, IndexHTML))
	for _, want := range []string{
		"Can VMs and containers share one bridge reliably?",
		"exchanges ICMP both ways", "Expected ping to succeed", // feasibility specs only
		"4 passed, 1\nfailed, 1 skipped",
		"10.0.1.254", "container/web", "found\n1 problem(s)",
		`href="latency.html"`, "p50 / floor",
		`<td class="bad">deny /`, `<td class="ok">allow /`,
		"vagrant up base1, docker1", "80.0", "width:92.5%",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if strings.Contains(page, "answers A queries") {
		t.Error("question 1 lists a spec outside the feasibility focus")
	}
}

func TestWriteIndexWithoutEvidence(t *testing.T) {
	dir := t.TempDir()
	if err := WriteIndex(dir, IndexInput{Lab: "empty", Bringup: "testdata/nope.json"}); err != nil {
		t.Fatal(err)
	}
	page := readPage(t, filepath.Join(dir, IndexHTML))
	for _, want := range []string{"no JUnit report was given", "No live ledger check",
		"No ledger given", "latency.json does not exist", "No policies declared",
		"testdata/nope.json does not exist"} {
		if !strings.Contains(page, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
}

func readPage(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
