// Package vagrant renders per-VM Vagrantfiles from the lab plan and drives
// `vagrant up`, `vagrant ssh` and `vagrant destroy` for them.
package vagrant

import (
	"os"
	"strings"
)

// DefaultHome is VAGRANT_HOME for every vagrant call the lab makes. It must
// stay outside /root: QEMU runs as libvirt-qemu and reads the box's kernel
// and initrd from here.
const DefaultHome = "/var/lib/hybridlab/vagrant.d"

// Env returns the process environment for a vagrant call: the caller's
// environment with VAGRANT_HOME set to home (DefaultHome when empty) and
// every check that would phone home turned off.
func Env(home string) []string {
	if home == "" {
		home = DefaultHome
	}
	set := map[string]string{
		"VAGRANT_HOME":                     home,
		"VAGRANT_CHECKPOINT_DISABLE":       "1",
		"VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
		"VAGRANT_DEFAULT_PROVIDER":         "libvirt",
		"VAGRANT_NO_COLOR":                 "1",
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := set[k]; !ours {
			out = append(out, kv)
		}
	}
	for _, k := range []string{"VAGRANT_HOME", "VAGRANT_CHECKPOINT_DISABLE",
		"VAGRANT_BOX_UPDATE_CHECK_DISABLE", "VAGRANT_DEFAULT_PROVIDER", "VAGRANT_NO_COLOR"} {
		out = append(out, k+"="+set[k])
	}
	return out
}
