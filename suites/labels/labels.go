// Package labels declares, once, the Ginkgo labels the hybridlab suites use,
// and the preflight that fails fast when a selected label's needs are
// missing on this host.
package labels

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified.
)

// Requirement labels: what a spec needs from the host.
var (
	// Root marks specs that change the host's links, nftables or processes.
	Root = Label("root")
	// Docker marks specs that need a running dockerd.
	Docker = Label("docker")
	// Libvirt marks specs that need libvirtd.
	Libvirt = Label("libvirt")
	// VM marks specs that boot Vagrant VMs (minutes under TCG).
	VM = Label("vm")
	// Slow marks specs that take more than a minute.
	Slow = Label("slow")
	// Perf marks measurements; `make test` leaves them out.
	Perf = Label("perf")
)

// Area labels: which part of the product a spec covers.
var (
	Provision    = Label("provision")
	Feasibility  = Label("feasibility")
	Connectivity = Label("connectivity")
	DNS          = Label("dns")
	Policy       = Label("policy")
	Latency      = Label("latency")
)

// needs maps a requirement label to the check of its host needs.
var needs = map[string]func() error{
	"root":    needRoot,
	"docker":  needSocket("/var/run/docker.sock", "dockerd", "go run ./setup deps"),
	"libvirt": needSocket("/run/libvirt/libvirt-sock", "libvirtd", "go run ./setup deps --vms"),
	"vm":      needBinary("vagrant", "go run ./setup deps --vms"),
}

// Preflight checks the needs of every requirement label that the current
// run's label filter can select, and fails the suite with one message per
// missing need. Call it from BeforeSuite.
func Preflight() {
	filter := GinkgoLabelFilter()
	var missing []string
	for label, check := range needs {
		if !selected(filter, label) {
			continue
		}
		if err := check(); err != nil {
			missing = append(missing, fmt.Sprintf("label %q: %v", label, err))
		}
	}
	if len(missing) > 0 {
		Fail("preflight: this host lacks what the selected specs need:\n  " +
			strings.Join(missing, "\n  ") + "\n(or deselect them with --label-filter)")
	}
}

// selected reports whether specs carrying the label can run under the
// filter. Only an explicit negation ("!vm") rules a label out: specs carry
// several labels, so a positive filter on another label may still select it.
func selected(filter, label string) bool {
	return !strings.Contains(strings.ReplaceAll(filter, " ", ""), "!"+label)
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (it changes links, nftables and processes); run as root")
	}
	return nil
}

func needSocket(path, daemon, fix string) func() error {
	return func() error {
		c, err := net.DialTimeout("unix", path, 2*time.Second)
		if err != nil {
			return fmt.Errorf("%s is not answering on %s; start it with '%s'", daemon, path, fix)
		}
		return c.Close()
	}
}

func needBinary(name, fix string) func() error {
	return func() error {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("%s is not installed; install it with '%s'", name, fix)
		}
		return nil
	}
}
