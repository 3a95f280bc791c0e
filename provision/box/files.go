package box

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// rootfsFiles holds the files laid over the Debian rootfs, at their guest
// paths under rootfs/. Files may use {{.Agent}} for the agent's path.
//
//go:embed rootfs
var rootfsFiles embed.FS

type staticFile struct {
	path string
	mode os.FileMode
	text string
}

// staticFiles lists the embedded files in path order with their guest mode.
var staticFiles = mustStaticFiles()

func mustStaticFiles() []staticFile {
	var out []staticFile
	err := fs.WalkDir(rootfsFiles, "rootfs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := rootfsFiles.ReadFile(p)
		if err != nil {
			return err
		}
		guest := strings.TrimPrefix(p, "rootfs")
		out = append(out, staticFile{path: guest, mode: guestMode(guest), text: string(data)})
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("read embedded box files: %v", err))
	}
	return out
}

func guestMode(path string) os.FileMode {
	switch {
	case strings.HasPrefix(path, "/usr/local/sbin/"):
		return 0o755
	case strings.HasPrefix(path, "/etc/sudoers.d/"):
		return 0o440
	default:
		return 0o644
	}
}
