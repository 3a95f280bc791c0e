// Package labctl is what the suites share to drive a real lab: the setup
// binary built once per suite, command runners that log to GinkgoWriter,
// and lookups against the lab's own DNS server.
package labctl

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified.
	. "github.com/onsi/gomega"    //nolint:revive
	"github.com/onsi/gomega/gexec"

	"hybridlab/topology"
)

// Timeouts used by the suites' Eventually calls and command waits.
const (
	// UpNetwork bounds `setup up --vms=false` (image build included).
	UpNetwork = 5 * time.Minute
	// UpVMs bounds `setup up` with VMs under TCG (box build included).
	UpVMs = 15 * time.Minute
	// Down bounds `setup down`.
	Down = 3 * time.Minute
	// Converge bounds waits for the data plane to settle (ARP, DNS reload).
	Converge = 20 * time.Second
	// Command bounds one short probe command (ping, nslookup, exec).
	Command = 30 * time.Second
)

// SetupBinary builds ./setup once and returns its path. Call it from
// SynchronizedBeforeSuite or BeforeSuite.
func SetupBinary() string {
	path, err := gexec.Build("hybridlab/setup")
	Expect(err).NotTo(HaveOccurred(), "build the setup binary")
	DeferCleanup(gexec.CleanupBuildArtifacts)
	return path
}

// Setup runs the setup binary with args and returns the started session.
func Setup(bin string, args ...string) *gexec.Session {
	GinkgoWriter.Printf("$ setup %s\n", strings.Join(args, " "))
	s, err := gexec.Start(exec.Command(bin, args...), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	return s
}

// MustSetup runs setup and expects it to exit 0 within timeout.
// A setup still running when the wait ends is stopped (SIGTERM, then
// SIGKILL), so it does not keep holding the lab's lock for the cleanup.
func MustSetup(bin string, timeout time.Duration, args ...string) *gexec.Session {
	s := Setup(bin, args...)
	defer func() {
		if s.ExitCode() == -1 {
			s.Terminate().Wait(Command)
			if s.ExitCode() == -1 {
				s.Kill().Wait(Command)
			}
		}
	}()
	Eventually(s, timeout).Should(gexec.Exit(0), "setup %s", strings.Join(args, " "))
	return s
}

// Run runs a command on the host and returns its combined output.
func Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Command)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	GinkgoWriter.Printf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	return string(out), err
}

// DockerExec runs cmd inside a container.
func DockerExec(container string, cmd ...string) (string, error) {
	return Run("docker", append([]string{"exec", container}, cmd...)...)
}

// LabFile writes a lab description to a temporary file and returns its path.
func LabFile(yaml string) string {
	path := filepath.Join(GinkgoT().TempDir(), "lab.yaml")
	Expect(os.WriteFile(path, []byte(yaml), 0o644)).To(Succeed())
	return path
}

// Plan loads the plan of a lab file ("" = the default lab).
func Plan(path string) *topology.Plan {
	lab, err := topology.Load(path)
	Expect(err).NotTo(HaveOccurred())
	p, err := topology.NewPlan(lab)
	Expect(err).NotTo(HaveOccurred())
	return p
}

// Resolver queries only the lab's DNS server on the gateway address.
func Resolver(p *topology.Plan) *net.Resolver {
	server := net.JoinHostPort(p.Gateway.String(), "53")
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}
