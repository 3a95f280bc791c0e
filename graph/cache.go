package graph

import (
	"io/fs"
	"os"
	"path/filepath"
)

// go-graphviz compiles its WebAssembly module when its package is
// initialised and keeps the result under $TMPDIR/go-graphviz with mode
// 0700. A later start by another user (setup run with sudo, then without)
// finds the directory but cannot read it, and go-graphviz panics before
// main runs. This init runs after go-graphviz's and opens up, read-only,
// what this process owns, so the cache serves every user.
func init() { shareCache(filepath.Join(os.TempDir(), "go-graphviz")) }

func shareCache(dir string) {
	uid := os.Geteuid()
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil || !ownedBy(info, uid) {
			return nil
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		if info.Mode().Perm() != mode {
			_ = os.Chmod(path, mode)
		}
		return nil
	})
}
