package labctl

import "hybridlab/provision"

// RepoRoot is the hybridlab source tree the suites run from.
func RepoRoot() string { return moduleRoot() }

// moduleRoot is the source tree, or "" when the suite runs outside one.
func moduleRoot() string {
	root, err := provision.SourceRoot()
	if err != nil {
		return ""
	}
	return root
}
