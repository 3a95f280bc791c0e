package doctor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"hybridlab/topology"
)

// testPlan is the plan of testdata/lab.yaml.
func testPlan(t *testing.T) *topology.Plan {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := topology.PlanYAML(b)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// loadState reads a recorded HostState from testdata.
func loadState(t *testing.T, name string) *HostState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var s HostState
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return &s
}

func checkByID(t *testing.T, id string) Check {
	t.Helper()
	for _, c := range Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s", id)
	return Check{}
}
