package probes

import "runtime"

// Version describes an agent build, as `probe version` prints it.
type Version struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// BuildInfo returns the Version of this binary with the given release string.
func BuildInfo(release string) Version {
	return Version{Version: release, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}
