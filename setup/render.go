package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"hybridlab/provision"
	"hybridlab/topology"
)

// renderGraph draws the plan with graph/cmd/render, run with `go run` from
// the source tree and a private TMPDIR (see that command's doc for why the
// picture is not drawn in this process).
func renderGraph(ctx context.Context, p *topology.Plan, format string, status map[string]bool,
	w io.Writer) error {
	root, err := provision.SourceRoot()
	if err != nil {
		return err
	}
	tmp, err := privateTempDir()
	if err != nil {
		return err
	}
	in, err := json.Marshal(struct {
		Plan   *topology.Plan  `json:"plan"`
		Status map[string]bool `json:"status,omitempty"`
	}{p, status})
	if err != nil {
		return err
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "run", "./graph/cmd/render", "--format", format)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("draw the lab (go run ./graph/cmd/render): %w: %s", err,
			bytes.TrimSpace(stderr.Bytes()))
	}
	_, err = w.Write(out.Bytes())
	return err
}

// privateTempDir is a 0700 directory of the calling user's, under the
// user's cache directory, that no other user can have prepared.
func privateTempDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a private temp dir: %w", err)
	}
	dir := filepath.Join(base, "hybridlab", "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Geteuid() || info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is not a private directory of this user; remove it", dir)
	}
	return dir, nil
}
