package box

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Suite is the Debian release the box is built from.
const Suite = "bookworm"

// basePackages is what every lab VM needs to boot with direct kernel boot,
// take DHCP on each NIC and accept Vagrant's SSH. dnsutils is left out on
// purpose: the lab has no upstream DNS to query. libnss-myhostname
// resolves the hostname set at boot (systemd.hostname=), which
// /etc/hosts cannot know; without it sudo stalls on a DNS lookup.
var basePackages = []string{
	"systemd-sysv", "udev", "dbus", "openssh-server", "sudo", "iproute2",
	"iputils-ping", "netbase", "procps", "linux-image-cloud-amd64",
	"initramfs-tools", "zstd", "libnss-myhostname",
}

// rolePackages serve the docker role (dockerd inside the VM, busybox as a
// tiny local image source since no registry is reachable) and the observer
// role (packet capture). All roles share one box: the extra packages cost
// less disk than a second box and a second pool volume, and dockerd only
// starts on VMs whose kernel command line asks for it.
var rolePackages = []string{"docker.io", "busybox-static", "tcpdump"}

// Packages returns the sorted list of Debian packages installed in the box.
func Packages() []string {
	out := append(append([]string(nil), basePackages...), rolePackages...)
	sort.Strings(out)
	return out
}

// builderVersion changes whenever the build steps change in a way the
// inputs below do not capture, so old cache entries are not reused.
const builderVersion = "4"

// inputsKey hashes everything that determines the box contents: suite,
// package list, every customisation file and command, and the agent
// binary. Two builds with the same key produce interchangeable boxes.
func inputsKey(c *customization, agentPath string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "builder %s\nsuite %s\npackages %s\nvagrantfile %s\n", builderVersion,
		Suite, strings.Join(Packages(), ","), boxVagrantfile)
	for _, f := range c.files {
		fmt.Fprintf(h, "file %s %o %d\n%s\n", f.path, f.mode, len(f.data), f.data)
	}
	for _, cmd := range c.commands {
		fmt.Fprintf(h, "cmd %q\n", cmd)
	}
	if agentPath != "" {
		if err := hashFile(h, agentPath); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("hash agent binary: %w", err)
	}
	defer f.Close()
	fmt.Fprintf(w, "agent\n")
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("hash agent binary %q: %w", path, err)
	}
	return nil
}
