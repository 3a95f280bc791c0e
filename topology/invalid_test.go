package topology_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hybridlab/topology"
)

// TestInvalidLabs loads every lab in testdata/invalid through Load and
// NewPlan. The file's leading "# want: MESSAGE" lines list every problem
// the error must report, no more and no fewer (a Load error may carry the
// file name in front), and the error must wrap ErrInvalid.
func TestInvalidLabs(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 18 {
		t.Fatalf("found %d invalid labs, want at least 18", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			want := wantLines(t, file)
			err := loadAndPlan(file)
			if !errors.Is(err, topology.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			var got []string
			for _, p := range topology.Problems(err) {
				got = append(got, strings.TrimPrefix(p, file+": "))
			}
			if !slices.Equal(got, want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "),
					strings.Join(want, "\n  "))
			}
		})
	}
}

func loadAndPlan(file string) error {
	lab, err := topology.Load(file)
	if err != nil {
		return err
	}
	_, err = topology.NewPlan(lab)
	return err
}

func wantLines(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(string(data), "\n") {
		msg, ok := strings.CutPrefix(line, "# want: ")
		if !ok {
			break
		}
		want = append(want, msg)
	}
	if len(want) == 0 {
		t.Fatalf("%s: must start with \"# want: MESSAGE\" lines", file)
	}
	return want
}
