package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// AgentBinary returns the path of the static probe agent that goes into
// the container image and the VM box, building it with the Go toolchain
// when its sources changed. The build is cached in CacheDir under a hash
// of the agent's sources, so an unchanged tree costs one directory walk.
//
// It needs the hybridlab source tree (found from the working directory)
// and `go` on PATH, which `go run ./setup` guarantees.
func AgentBinary(ctx context.Context, out io.Writer) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	sum, err := hashTree(filepath.Join(root, "probes"), filepath.Join(root, "go.sum"))
	if err != nil {
		return "", fmt.Errorf("hash agent sources: %w", err)
	}
	path := filepath.Join(CacheDir(), "agent", "probe-"+sum[:16])
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp,
		"./probes/cmd/probe")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build probe agent (go build ./probes/cmd/probe): %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}

// SourceRoot finds the hybridlab source tree from the working directory;
// the agent and the graph renderer are built from it.
func SourceRoot() (string, error) { return moduleRoot() }

// moduleRoot finds the hybridlab source tree from the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module hybridlab\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the probe agent is built from the hybridlab source tree: " +
				"run setup from inside it (cd hybridlab && go run ./setup …)")
		}
		dir = parent
	}
}

// hashTree hashes the names and contents of every Go file under dir and
// the extra files.
func hashTree(dir string, extra ...string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") ||
			strings.HasSuffix(path, "_test.go") {
			return err
		}
		return hashFile(h, path)
	})
	if err != nil {
		return "", err
	}
	for _, f := range extra {
		if err := hashFile(h, f); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %d\n", filepath.Base(path), len(data))
	_, err = h.Write(data)
	return err
}
