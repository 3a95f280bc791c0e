package labctl

import (
	"encoding/json"
	"os"

	"hybridlab/provision/accel"
)

// RepoRoot is the hybridlab source tree the suites run from.
func RepoRoot() string { return moduleRoot() }

// AccelDecision is the accelerator `up` chose for this host boot, if any.
func AccelDecision() (accel.Decision, bool) {
	var d accel.Decision
	data, err := os.ReadFile(accel.DefaultCachePath)
	if err != nil || json.Unmarshal(data, &d) != nil {
		return d, false
	}
	return d, true
}
