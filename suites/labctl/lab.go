package labctl

import (
	"context"
	"os"
	"path/filepath"

	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified.
	. "github.com/onsi/gomega"    //nolint:revive

	"hybridlab/probes/remote"
	"hybridlab/provision"
	"hybridlab/topology"
)

// Environment variables that point the suites at a lab.
const (
	// EnvLab names the lab file the suites use; empty means the embedded default lab.
	EnvLab = "HYBRIDLAB_LAB"
	// EnvReuse=1 makes the suites use a lab that is already up (as `make e2e` leaves it)
	// and never bring it up or down themselves.
	EnvReuse = "HYBRIDLAB_REUSE"
)

// LabPath is the absolute path of the lab file named by HYBRIDLAB_LAB, or "" for the
// default lab. A relative path is resolved against the module root, because Ginkgo runs each
// suite in its own package directory.
func LabPath() string {
	path := os.Getenv(EnvLab)
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	if root := moduleRoot(); root != "" {
		return filepath.Join(root, path)
	}
	abs, _ := filepath.Abs(path)
	return abs
}

// Reuse reports whether HYBRIDLAB_REUSE=1: the lab is up already and stays up.
func Reuse() bool { return os.Getenv(EnvReuse) == "1" }

// LabArgs prefixes args with `-f LABFILE` when HYBRIDLAB_LAB names one.
func LabArgs(args ...string) []string {
	if path := LabPath(); path != "" {
		return append([]string{"-f", path}, args...)
	}
	return args
}

// Lab is the lab a suite runs against: the one HYBRIDLAB_LAB names, brought up on first
// need and taken down when the suite ends, or with HYBRIDLAB_REUSE=1 an existing one that
// the suite leaves alone.
type Lab struct {
	Bin  string
	Plan *topology.Plan
	// Docker is a client for the lab's containers (API version negotiated).
	Docker *client.Client

	started bool // this run called up, so it owes a down
	vms     bool // up ran with VMs
	network bool // up ran (network half at least)
}

// NewLab loads the plan of HYBRIDLAB_LAB, connects to dockerd and registers the lab's
// `setup down` for the end of the suite. Call it from BeforeSuite, after SetupBinary.
func NewLab(bin string) *Lab {
	l := &Lab{Bin: bin, Plan: Plan(LabPath())}
	cli, err := remote.NewDockerClient()
	Expect(err).NotTo(HaveOccurred())
	l.Docker = cli
	DeferCleanup(l.down)
	DeferCleanup(cli.Close)
	GinkgoWriter.Printf("lab %q from %s (reuse=%v)\n", l.Plan.Lab, labName(), Reuse())
	return l
}

func labName() string {
	if p := LabPath(); p != "" {
		return p
	}
	return "the embedded default lab"
}

// Up brings the lab up (`setup -f LAB up`, with `--vms=false` unless vms) unless this run
// did so already. Under HYBRIDLAB_REUSE=1 it changes nothing. Call it from BeforeAll.
func (l *Lab) Up(vms bool) {
	if Reuse() || (l.network && (l.vms || !vms)) {
		return
	}
	args := []string{"up"}
	timeout := UpVMs
	if !vms {
		args, timeout = append(args, "--vms=false"), UpNetwork
	}
	l.started = true
	MustSetup(l.Bin, timeout, LabArgs(args...)...)
	l.network, l.vms = true, l.vms || vms
}

// ReUp runs `setup up --vms=false` to repair the network half of the lab (containers, DNS,
// guard) after a spec removed part of it; running VMs are left alone.
func (l *Lab) ReUp() {
	MustSetup(l.Bin, UpNetwork, LabArgs("up", "--vms=false")...)
}

func (l *Lab) down() {
	if !l.started || Reuse() {
		return
	}
	Setup(l.Bin, LabArgs("down")...).Wait(Down)
}

// Agent returns the host's probe agent binary (built and cached like `setup up` does).
func Agent() string {
	path, err := provision.AgentBinary(context.Background(), GinkgoWriter)
	Expect(err).NotTo(HaveOccurred(), "build the probe agent")
	return path
}

// StateDir is the run-time state directory of the plan's lab (leases, dnsmasq config).
func StateDir(p *topology.Plan) string { return provision.StateDir(p.Lab) }
