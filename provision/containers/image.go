package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"hybridlab/topology"
)

// Image labels. The agent image is shared by every lab, so it carries no
// lab label.
const (
	// LabelImageHash holds the hash of everything that went into the image;
	// EnsureImage skips the import when it matches.
	LabelImageHash = topology.LabelPrefix + ".image.hash"
	// LabelAgent is "true" when the image holds the probe agent.
	LabelAgent = topology.LabelPrefix + ".image.agent"
)

// Paths inside the agent image.
const (
	busyboxPath = "/bin/busybox"
	agentPath   = "/usr/local/bin/probe"
	imagePATH   = "/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin"
)

// DefaultBusybox is Debian's static busybox (package busybox-static).
const DefaultBusybox = "/bin/busybox"

// idleCommand keeps a container without an agent running: the longest
// sleep busybox accepts without overflow.
var idleCommand = []string{"sleep", "2147483647"}

// agentCommand runs the probe agent.
var agentCommand = []string{"probe", "serve"}

// ImageSpec says what goes into the agent image.
type ImageSpec struct {
	// Ref is the image reference to tag; topology.DefaultImage when empty.
	Ref string
	// Busybox is a statically linked busybox; DefaultBusybox when empty.
	Busybox string
	// Agent is the probe agent binary (static). When empty the image has no
	// agent and its command sleeps.
	Agent string
}

// Image describes the agent image after EnsureImage.
type Image struct {
	Ref   string
	ID    string
	Hash  string
	Agent bool
	// Built is false when an image with the same content hash was reused.
	Built bool
}

// EnsureImage makes sure spec.Ref names an image built from spec: a single
// layer holding the static busybox with a symlink per applet, and the agent
// at /usr/local/bin/probe when given. No registry is contacted: the layer is
// imported (`docker import` with LABEL and CMD changes). When the image
// under spec.Ref already carries the same content hash label, nothing is
// done; when an input changed, the image is imported again, the tag moves
// and the old image is removed unless a container still uses it.
func EnsureImage(ctx context.Context, cli client.APIClient, spec ImageSpec) (Image, error) {
	spec = spec.withDefaults()
	layer, err := imageLayer(spec)
	if err != nil {
		return Image{}, fmt.Errorf("build image %q: %w", spec.Ref, err)
	}
	changes := imageChanges(spec)
	img := Image{Ref: spec.Ref, Hash: contentHash(layer, changes), Agent: spec.Agent != ""}

	cur, err := cli.ImageInspect(ctx, spec.Ref)
	switch {
	case err == nil && cur.Config != nil && cur.Config.Labels[LabelImageHash] == img.Hash:
		img.ID = cur.ID
		return img, nil
	case err != nil && !errdefs.IsNotFound(err):
		return Image{}, fmt.Errorf("inspect image %q: %w", spec.Ref, err)
	}

	changes = append(changes, "LABEL "+LabelImageHash+"="+img.Hash)
	if err := importImage(ctx, cli, spec.Ref, layer, changes); err != nil {
		return Image{}, err
	}
	old := cur.ID
	cur, err = cli.ImageInspect(ctx, spec.Ref)
	if err != nil {
		return Image{}, fmt.Errorf("inspect image %q: %w", spec.Ref, err)
	}
	img.ID, img.Built = cur.ID, true
	if old != "" && old != img.ID {
		// Best effort: an image still used by a container stays until
		// the container is recreated; `docker image prune` takes it then.
		cli.ImageRemove(ctx, old, image.RemoveOptions{})
	}
	return img, nil
}

func (s ImageSpec) withDefaults() ImageSpec {
	if s.Ref == "" {
		s.Ref = topology.DefaultImage
	}
	if s.Busybox == "" {
		s.Busybox = DefaultBusybox
	}
	return s
}

func imageChanges(spec ImageSpec) []string {
	cmd := idleCommand
	if spec.Agent != "" {
		cmd = agentCommand
	}
	js, _ := json.Marshal(cmd)
	return []string{
		"ENV PATH=" + imagePATH,
		fmt.Sprintf("LABEL %s=%t", LabelAgent, spec.Agent != ""),
		"CMD " + string(js),
	}
}

func contentHash(layer []byte, changes []string) string {
	h := sha256.New()
	h.Write(layer)
	for _, c := range changes {
		io.WriteString(h, c+"\n")
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// importImage is `docker import -c CHANGE… - REF`.
func importImage(ctx context.Context, cli client.APIClient, ref string, layer []byte,
	changes []string,
) error {
	src := image.ImportSource{Source: bytes.NewReader(layer), SourceName: "-"}
	rc, err := cli.ImageImport(ctx, src, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		return fmt.Errorf("import image %q: %w", ref, err)
	}
	defer rc.Close()
	if err := jsonStreamError(rc); err != nil {
		return fmt.Errorf("import image %q: %w", ref, err)
	}
	return nil
}

// jsonStreamError reads a Docker progress stream to its end and returns
// the first error message in it.
func jsonStreamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read progress: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("%s", msg.Error)
		}
	}
}

// layerTime is the fixed mtime of every entry, so the same inputs always
// give the same layer bytes and the same content hash.
var layerTime = time.Unix(0, 0).UTC()

// imageLayer builds the image's root filesystem as a tar stream.
func imageLayer(spec ImageSpec) ([]byte, error) {
	applets, err := busyboxApplets(spec.Busybox)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "etc",
		"tmp", "root", "proc", "sys", "dev", "run", "var/tmp"} {
		mode := int64(0o755)
		if d == "tmp" || d == "var/tmp" {
			mode = 0o1777
		}
		if err := tarDir(tw, d, mode); err != nil {
			return nil, err
		}
	}
	if err := tarFile(tw, spec.Busybox, busyboxPath); err != nil {
		return nil, err
	}
	if err := tarApplets(tw, applets); err != nil {
		return nil, err
	}
	if spec.Agent != "" {
		if err := checkStatic(spec.Agent); err != nil {
			return nil, err
		}
		if err := tarFile(tw, spec.Agent, agentPath); err != nil {
			return nil, err
		}
	}
	for _, f := range etcFiles {
		if err := tarBytes(tw, f.name, []byte(f.body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkStatic refuses a dynamically linked ELF binary: the image has no C
// library or loader, and such a binary fails there with a bare "no such
// file or directory". Scripts pass (busybox sh runs them).
func checkStatic(path string) error {
	if ok, err := isELF(path); err != nil || !ok {
		return err
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("read agent %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("agent %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

func isELF(path string) (bool, error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("read agent %s: %w", path, err)
	}
	defer fh.Close()
	head := make([]byte, len(elf.ELFMAG))
	n, _ := io.ReadFull(fh, head)
	return string(head[:n]) == elf.ELFMAG, nil
}

// busyboxApplets lists the applets of bin with their install paths
// (`busybox --list-full`, e.g. "sbin/ip", "usr/bin/wget").
func busyboxApplets(bin string) ([]string, error) {
	out, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("list applets of %s: %w", bin, err)
	}
	var applets []string
	for _, l := range strings.Fields(string(out)) {
		l = strings.TrimPrefix(l, "/")
		if l != "" && l != strings.TrimPrefix(busyboxPath, "/") {
			applets = append(applets, l)
		}
	}
	sort.Strings(applets)
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s lists no applets", bin)
	}
	return applets, nil
}

func tarApplets(tw *tar.Writer, applets []string) error {
	seen := map[string]bool{}
	for _, a := range applets {
		dir := path.Dir(a)
		if !seen[dir] && !knownDir(dir) {
			if err := tarDir(tw, dir, 0o755); err != nil {
				return err
			}
		}
		seen[dir] = true
		hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: a, Linkname: busyboxPath,
			Mode: 0o777, ModTime: layerTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s: %w", a, err)
		}
	}
	return nil
}

func knownDir(d string) bool {
	switch d {
	case "bin", "sbin", "usr/bin", "usr/sbin":
		return true
	}
	return false
}

// etcFiles lets busybox tools resolve user and group names.
var etcFiles = []struct{ name, body string }{
	{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
	{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
}

func tarDir(tw *tar.Writer, name string, mode int64) error {
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: layerTime}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func tarFile(tw *tar.Writer, src, dst string) error {
	body, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: 0o755,
		Size: int64(len(body)), ModTime: layerTime}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if _, err := tw.Write(body); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

func tarBytes(tw *tar.Writer, name string, body []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644,
		Size: int64(len(body)), ModTime: layerTime}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(body); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
