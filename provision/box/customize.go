package box

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

// file is one file the customisation writes into the rootfs.
type file struct {
	path string
	mode os.FileMode
	data []byte
}

// customization is everything done to the rootfs after mmdebstrap: files
// written, symlinks made (masks included), then commands run in a chroot.
// It is data, so its content feeds the cache key.
type customization struct {
	files    []file
	links    map[string]string
	commands [][]string
	agent    string
}

// agentPath is where the probe agent lives inside the guest.
const agentPath = "/usr/local/bin/probe"

// maskedUnits would start timers or network calls nobody in a lab wants, or
// slow the boot (e2scrub_reap alone costs ~6 s under TCG).
var maskedUnits = []string{
	"apt-daily.timer", "apt-daily-upgrade.timer", "systemd-timesyncd.service",
	"e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "man-db.timer",
	"systemd-networkd-wait-online.service",
}

// disabledUnits start only when a role asks for them on the kernel
// command line (systemd.wants=docker.service).
var disabledUnits = []string{"docker.service", "docker.socket", "containerd.service"}

// newCustomization builds the customisation for a box. vagrantKey is the
// public half of Vagrant's insecure key; agent is the probe binary on the
// host, or "" for none.
func newCustomization(vagrantKey []byte, agent string) (*customization, error) {
	c := &customization{links: map[string]string{}, agent: agent}
	for _, f := range staticFiles {
		data, err := renderStatic(f.text)
		if err != nil {
			return nil, err
		}
		c.files = append(c.files, file{path: f.path, mode: f.mode, data: data})
	}
	c.files = append(c.files, file{
		path: "/home/vagrant/.ssh/authorized_keys", mode: 0o600, data: vagrantKey,
	})
	sort.Slice(c.files, func(i, j int) bool { return c.files[i].path < c.files[j].path })
	for _, u := range maskedUnits {
		c.links["/etc/systemd/system/"+u] = "/dev/null"
	}
	// dbus keeps its own copy of the machine id; a copy made at build time
	// would be shared by every VM, so it follows /etc/machine-id instead.
	c.links["/var/lib/dbus/machine-id"] = "/etc/machine-id"
	c.commands = commands(agent != "")
	return c, nil
}

func commands(withAgent bool) [][]string {
	enable := []string{"systemctl", "enable", "systemd-networkd.service",
		"hybridlab-resolv.path"}
	if withAgent {
		enable = append(enable, "hybridlab-probe.service")
	}
	return [][]string{
		{"useradd", "-M", "-d", "/home/vagrant", "-s", "/bin/bash", "-U", "-u", "1000", "vagrant"},
		{"chown", "-R", "vagrant:vagrant", "/home/vagrant"},
		{"chmod", "0700", "/home/vagrant", "/home/vagrant/.ssh"},
		append([]string{"systemctl", "disable"}, disabledUnits...),
		enable,
	}
}

// apply writes the customisation into the rootfs at root and runs its
// commands with chroot(8). It leaves the rootfs ready to be imaged.
func (c *customization) apply(root string, log io.Writer) error {
	for _, f := range c.files {
		if err := writeFile(root, f.path, f.mode, f.data); err != nil {
			return err
		}
	}
	for path, target := range c.links {
		if err := symlink(root, path, target); err != nil {
			return err
		}
	}
	if c.agent != "" {
		if err := copyAgent(root, c.agent); err != nil {
			return err
		}
	}
	for _, cmd := range c.commands {
		run := exec.Command("chroot", append([]string{root}, cmd...)...)
		run.Stdout, run.Stderr = log, log
		if err := run.Run(); err != nil {
			return fmt.Errorf("customize rootfs: chroot %s: %w", strings.Join(cmd, " "), err)
		}
	}
	return nil
}

func writeFile(root, path string, mode os.FileMode, data []byte) error {
	full := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("customize rootfs: create dir for %s: %w", path, err)
	}
	// Remove first: mmdebstrap may leave a symlink (resolv.conf) in place.
	_ = os.Remove(full)
	if err := os.WriteFile(full, data, mode); err != nil {
		return fmt.Errorf("customize rootfs: write %s: %w", path, err)
	}
	return os.Chmod(full, mode)
}

func symlink(root, path, target string) error {
	full := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("customize rootfs: create dir for %s: %w", path, err)
	}
	_ = os.Remove(full)
	if err := os.Symlink(target, full); err != nil {
		return fmt.Errorf("customize rootfs: link %s: %w", path, err)
	}
	return nil
}

func copyAgent(root, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("customize rootfs: read agent: %w", err)
	}
	return writeFile(root, agentPath, 0o755, data)
}

func renderStatic(text string) ([]byte, error) {
	t, err := template.New("f").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse box file template: %w", err)
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]string{"Agent": agentPath})
	if err != nil {
		return nil, fmt.Errorf("render box file: %w", err)
	}
	return b.Bytes(), nil
}
