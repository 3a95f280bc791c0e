package doctor

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output; run with -update after checking:\n%s", path, got)
	}
}

func TestReportTable(t *testing.T) {
	r := NewReport(testPlan(t), loadState(t, "bad/nft_foreign_drop.json"))
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.txt", b.Bytes())
}

func TestReportJSON(t *testing.T) {
	r := NewReport(testPlan(t), loadState(t, "bad/stp.json"))
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.golden.json", b.Bytes())
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Failed() || back.Worst != Warn || len(back.Findings) != 1 {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestHostStateRoundTrip(t *testing.T) {
	s := loadState(t, "good.json")
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back HostState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&back)
	if !bytes.Equal(b, b2) {
		t.Fatalf("HostState does not survive JSON:\n%s\n%s", b, b2)
	}
}
