package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSetup writes a script that logs its arguments to LOG and fails when they equal FAIL.
func fakeSetup(t *testing.T, fail string) (bin, log string) {
	t.Helper()
	dir := t.TempDir()
	bin, log = filepath.Join(dir, "setup"), filepath.Join(dir, "calls.log")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\n" +
		"if [ \"$*\" = \"" + fail + "\" ]; then echo boom >&2; exit 3; fi\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

// stepClock returns times that advance by the given steps, one per call.
func stepClock(steps ...time.Duration) func() time.Time {
	t := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	i := 0
	return func() time.Time {
		if i < len(steps) {
			t = t.Add(steps[i])
		}
		i++
		return t
	}
}

func calls(t *testing.T, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestMeasureSequenceAndStatistics(t *testing.T) {
	bin, log := fakeSetup(t, "")
	s := time.Second
	// Clock calls: report start, then start/end of each up and down.
	clock := stepClock(0, 0, 50*s, 0, 9*s, // warm-up: up 50s, down 9s
		0, 10*s, 0, 2*s, 0, 12*s, 0, 3*s, 0, 11*s, 0, 2*s, 0, 20*s, 0, 4*s)
	var out bytes.Buffer
	c := cycler{setup: bin, lab: "my.yaml", vms: true, log: &out, now: clock, exec: execCommand}
	rep, err := c.measure(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	got := calls(t, log)
	want := strings.Repeat("-f my.yaml up --vms=true\n-f my.yaml down\n", 5)
	if strings.Join(got, "\n")+"\n" != want {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	if rep.Warmup.UpS != 50 || rep.Warmup.DownS != 9 || len(rep.Samples) != 4 {
		t.Errorf("warm-up %+v, %d samples", rep.Warmup, len(rep.Samples))
	}
	// ups sorted 10 11 12 20: median 11.5, Q1 10.75, Q3 12+0.25*8 = 14; downs 2 2 3 4
	if rep.Up.Median != 11.5 || rep.Up.Min != 10 || rep.Up.Max != 20 || rep.Up.IQR != 3.25 {
		t.Errorf("up spread %+v", rep.Up)
	}
	if rep.Down.Median != 2.5 || rep.Down.Max != 4 {
		t.Errorf("down spread %+v", rep.Down)
	}
	printSummary(&out, rep)
	if !strings.Contains(out.String(), "up    median  11.50s") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestFailedUpTearsDown(t *testing.T) {
	bin, log := fakeSetup(t, "up --vms=false")
	c := cycler{setup: bin, log: &bytes.Buffer{}, now: time.Now, exec: execCommand}
	_, err := c.measure(context.Background(), 3)
	if err == nil || !strings.Contains(err.Error(), "cycle 0: setup up") {
		t.Fatalf("err = %v", err)
	}
	if got := calls(t, log); strings.Join(got, ",") != "up --vms=false,down" {
		t.Errorf("calls %q: a failed up must be followed by down and nothing else", got)
	}
}

func TestRunWritesReport(t *testing.T) {
	bin, _ := fakeSetup(t, "")
	out := filepath.Join(t.TempDir(), "out", "updown.json")
	o := options{runs: 2, setup: bin, out: out}
	if err := run(context.Background(), o, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil || rep.Runs != 2 || rep.Up.N != 2 ||
		rep.Command[1] != "up" || rep.Command[2] != "--vms=false" {
		t.Errorf("report %s (%v)", data, err)
	}
}
