package box

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"hybridlab/provision/vagrant"
)

// sources are the apt lines mmdebstrap installs from: the release, its
// updates and its security fixes, from Debian's own mirror.
var sources = []string{
	"deb http://deb.debian.org/debian " + Suite + " main",
	"deb http://deb.debian.org/debian " + Suite + "-updates main",
	"deb http://deb.debian.org/debian-security " + Suite + "-security main",
}

func build(ctx context.Context, o Options, c *customization, key, dir string) (*Box, error) {
	start := time.Now()
	work := dir + ".work"
	if err := os.RemoveAll(work); err != nil {
		return nil, fmt.Errorf("clear box work dir %s: %w", work, err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("create box work dir %s: %w", work, err)
	}
	b := &Box{Name: o.Name, Version: versionOf(key), Key: key, Dir: dir}
	if err := buildIn(ctx, o, c, b, work); err != nil {
		_ = os.RemoveAll(work)
		return nil, err
	}
	if err := publish(work, dir); err != nil {
		return nil, err
	}
	b.BuildTime = time.Since(start).Round(100 * time.Millisecond)
	if err := writeRecord(b); err != nil {
		return nil, fmt.Errorf("write box record: %w", err)
	}
	progress(o.Progress, "box %s %s: built in %s, %d MB", b.Name, b.Version, b.BuildTime,
		b.Size>>20)
	return b, nil
}

// buildIn runs the build steps inside work and fills in b's file paths as
// they will be once work is renamed to b.Dir.
func buildIn(ctx context.Context, o Options, c *customization, b *Box, work string) error {
	root := filepath.Join(work, "rootfs")
	raw := filepath.Join(work, "root.raw")
	stage := filepath.Join(work, "box")
	steps := []struct {
		name string
		run  func() error
	}{
		{"debootstrap rootfs", func() error { return bootstrap(ctx, root, o.Progress) }},
		{"customize rootfs", func() error { return c.apply(root, o.Progress) }},
		{"extract kernel", func() error { return extractKernel(root, work, stage) }},
		{"make ext4 image", func() error { return makeImage(ctx, root, raw, o.Progress) }},
		{"compress qcow2", func() error { return convert(ctx, raw, stage, o.Progress) }},
		{"write box metadata", func() error { return writeBoxFiles(stage) }},
		{"pack box", func() error { return pack(stage, filepath.Join(work, boxFile(b))) }},
	}
	for _, s := range steps {
		t := time.Now()
		progress(o.Progress, "box: %s", s.name)
		if err := s.run(); err != nil {
			return err
		}
		progress(o.Progress, "box: %s done in %s", s.name, time.Since(t).Round(100*time.Millisecond))
	}
	b.File = filepath.Join(b.Dir, boxFile(b))
	b.Kernel = filepath.Join(b.Dir, "vmlinuz")
	b.Initrd = filepath.Join(b.Dir, "initrd.img")
	st, err := os.Stat(filepath.Join(work, boxFile(b)))
	if err != nil {
		return fmt.Errorf("stat box file: %w", err)
	}
	b.Size = st.Size()
	return nil
}

func boxFile(b *Box) string {
	return strings.ReplaceAll(b.Name, "/", "-") + ".box"
}

// versionOf derives a Vagrant box version from the inputs hash, so a
// rebuilt box with other inputs never replaces one that VMs still use.
func versionOf(key string) string {
	n, _ := strconv.ParseUint(key[:7], 16, 32)
	return "1.0." + strconv.FormatUint(n, 10)
}

func bootstrap(ctx context.Context, root string, log io.Writer) error {
	args := []string{
		"--mode=root", "--variant=minbase", "--format=directory",
		"--aptopt=APT::Install-Recommends \"false\"",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-include=/usr/share/locale/locale.alias",
		"--include=" + strings.Join(Packages(), ","),
		Suite, root,
	}
	args = append(args, sources...)
	return run(ctx, log, "mmdebstrap", args...)
}

func extractKernel(root, work, stage string) error {
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return fmt.Errorf("create box stage dir: %w", err)
	}
	for _, k := range []struct{ glob, name string }{
		{"boot/vmlinuz-*", "vmlinuz"}, {"boot/initrd.img-*", "initrd.img"},
	} {
		found, _ := filepath.Glob(filepath.Join(root, k.glob))
		if len(found) != 1 {
			return fmt.Errorf("extract kernel: want one %s in rootfs, found %d", k.glob, len(found))
		}
		data, err := os.ReadFile(found[0])
		if err != nil {
			return fmt.Errorf("extract kernel: %w", err)
		}
		// The box carries the kernel for direct boot; the cache keeps a
		// copy for the accelerator probe.
		for _, dst := range []string{filepath.Join(stage, k.name), filepath.Join(work, k.name)} {
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				return fmt.Errorf("extract kernel: %w", err)
			}
		}
	}
	return nil
}

func makeImage(ctx context.Context, root, raw string, log io.Writer) error {
	f, err := os.Create(raw)
	if err != nil {
		return fmt.Errorf("create raw image: %w", err)
	}
	err = f.Truncate(DiskGiB << 30)
	f.Close()
	if err != nil {
		return fmt.Errorf("size raw image: %w", err)
	}
	err = run(ctx, log, "mke2fs", "-q", "-t", "ext4", "-L", "hybridroot", "-d", root, raw)
	if err != nil {
		return err
	}
	// The rootfs is in the image now; dropping it early halves peak disk use.
	return os.RemoveAll(root)
}

func convert(ctx context.Context, raw, stage string, log io.Writer) error {
	img := filepath.Join(stage, "box.img")
	// zstd compresses the image in ~5 s where zlib takes ~35 s, and
	// smaller; QEMU reads it since 5.1.
	err := run(ctx, crToNL{log}, "qemu-img", "convert", "-p", "-c", "-f", "raw", "-O", "qcow2",
		"-o", "compression_type=zstd", raw, img)
	if err != nil {
		return err
	}
	return os.Remove(raw)
}

// boxVagrantfile boots the box's own kernel and initrd, found next to this
// file wherever Vagrant unpacked the box. Per-VM Vagrantfiles add to
// cmd_line and choose the driver.
const boxVagrantfile = `Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.kernel = File.join(File.dirname(__FILE__), "vmlinuz")
    libvirt.initrd = File.join(File.dirname(__FILE__), "initrd.img")
    libvirt.cmd_line = "` + vagrant.KernelCmdline + `"
  end
end
`

func writeBoxFiles(stage string) error {
	meta := fmt.Sprintf(`{"provider":"libvirt","format":"qcow2","virtual_size":%d}`+"\n", DiskGiB)
	if err := os.WriteFile(filepath.Join(stage, "metadata.json"), []byte(meta), 0o644); err != nil {
		return fmt.Errorf("write box metadata: %w", err)
	}
	err := os.WriteFile(filepath.Join(stage, "Vagrantfile"), []byte(boxVagrantfile), 0o644)
	if err != nil {
		return fmt.Errorf("write box Vagrantfile: %w", err)
	}
	return nil
}

// pack writes the stage directory as an uncompressed tar (the qcow2 is
// already compressed) and removes the stage.
func pack(stage, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("pack box: %w", err)
	}
	tw := tar.NewWriter(out)
	for _, name := range []string{"metadata.json", "Vagrantfile", "box.img", "vmlinuz",
		"initrd.img"} {
		if err := addToTar(tw, filepath.Join(stage, name), name); err != nil {
			out.Close()
			return fmt.Errorf("pack box: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		out.Close()
		return fmt.Errorf("pack box: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("pack box: %w", err)
	}
	return os.RemoveAll(stage)
}

func addToTar(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime(),
		Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// publish moves a finished work dir into place, replacing an older build
// with the same key.
func publish(work, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replace box dir %s: %w", dir, err)
	}
	if err := os.Rename(work, dir); err != nil {
		return fmt.Errorf("publish box dir %s: %w", dir, err)
	}
	return nil
}

func run(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	return nil
}

// crToNL turns qemu-img's carriage-return progress into lines.
type crToNL struct{ w io.Writer }

func (c crToNL) Write(p []byte) (int, error) {
	q := []byte(strings.ReplaceAll(string(p), "\r", "\n"))
	if _, err := c.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
