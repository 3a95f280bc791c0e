package box

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"hybridlab/provision/vagrant"
)

// add makes Vagrant know b under o.VagrantHome, through a local catalog so
// the box carries a version (`vagrant box add CATALOG`). A box whose
// version is already there is left alone, unless the build just ran.
func add(ctx context.Context, o Options, b *Box) error {
	if b.Cached && Added(o.VagrantHome, b) {
		return nil
	}
	catalog, err := writeCatalog(b)
	if err != nil {
		return err
	}
	progress(o.Progress, "box %s %s: vagrant box add", b.Name, b.Version)
	cmd := exec.CommandContext(ctx, "vagrant", "box", "add", "--force", "--provider", "libvirt",
		catalog)
	cmd.Env = vagrant.Env(o.VagrantHome)
	cmd.Dir = b.Dir
	cmd.Stdout, cmd.Stderr = o.Progress, o.Progress
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("vagrant box add %s %s: %w", b.Name, b.Version, err)
	}
	return nil
}

// Added reports whether Vagrant under home has box b at its version.
func Added(home string, b *Box) bool {
	if home == "" {
		home = vagrant.DefaultHome
	}
	dir := filepath.Join(home, "boxes", strings.ReplaceAll(b.Name, "/", "-VAGRANTSLASH-"),
		b.Version, "libvirt", "box.img")
	_, err := os.Stat(dir)
	return err == nil
}

type catalog struct {
	Name     string           `json:"name"`
	Versions []catalogVersion `json:"versions"`
}

type catalogVersion struct {
	Version   string            `json:"version"`
	Providers []catalogProvider `json:"providers"`
}

type catalogProvider struct {
	Name         string `json:"name"`
	URL          string `json:"url"`
	ChecksumType string `json:"checksum_type"`
	Checksum     string `json:"checksum"`
}

func writeCatalog(b *Box) (string, error) {
	sum, err := sha256File(b.File)
	if err != nil {
		return "", err
	}
	c := catalog{Name: b.Name, Versions: []catalogVersion{{
		Version: b.Version,
		Providers: []catalogProvider{{
			Name: "libvirt", URL: "file://" + b.File, ChecksumType: "sha256", Checksum: sum,
		}},
	}}}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.Dir, "catalog.json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write box catalog: %w", err)
	}
	return path, nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum box: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum box %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
