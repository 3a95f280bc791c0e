package labctl

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified.
	. "github.com/onsi/gomega"    //nolint:revive

	"hybridlab/matrix"
	"hybridlab/probes/remote"
	"hybridlab/topology"
)

// Timeouts of the suites that drive VMs and the connectivity matrix.
const (
	// VMReady bounds the wait for a VM that `up` reported ready to answer SSH on its lab
	// address (TCG guests are slow to start sshd's sessions).
	VMReady = 3 * time.Minute
	// VMCommand bounds one command on a VM over SSH.
	VMCommand = time.Minute
	// Matrix bounds one full connectivity matrix run.
	Matrix = 10 * time.Minute
	// PortForwarding bounds the time a new bridge port may take to reach the forwarding
	// state: with STP off it forwards at once (fault B18 is a 30 s wait).
	PortForwarding = time.Second
	// Recreate bounds how long a container re-created at its planned address may take to
	// answer again: one ARP exchange, no more.
	Recreate = 10 * time.Second
)

var vmAgents sync.Map // node name → *remote.SSH, shared for the whole suite

// Agent returns the runner for node n: `docker exec` into a container, SSH to a VM's lab
// address (one connection per VM, closed when the suite ends).
func (l *Lab) Agent(n topology.Node) matrix.Agent {
	if n.Kind == topology.KindContainer {
		return remote.DockerExec{API: l.Docker, Container: n.Object}
	}
	if a, ok := vmAgents.Load(n.Name); ok {
		return a.(*remote.SSH)
	}
	s := &remote.SSH{Addr: n.IP.String()}
	if a, loaded := vmAgents.LoadOrStore(n.Name, s); loaded {
		return a.(*remote.SSH)
	}
	DeferCleanup(s.Close)
	return s
}

// Node returns the plan's node called name, failing the spec when there is none.
func (l *Lab) Node(name string) topology.Node {
	n, ok := l.Plan.Node(name)
	Expect(ok).To(BeTrue(), "lab %q has no node %q", l.Plan.Lab, name)
	return n
}

// NodeOfRole returns the first VM of role, skipping the spec when the lab has none.
func (l *Lab) NodeOfRole(role string) topology.Node {
	for _, n := range l.Plan.VMs() {
		if n.Role == role {
			return n
		}
	}
	Skip(fmt.Sprintf("lab %q has no VM of role %s", l.Plan.Lab, role))
	return topology.Node{}
}

// Exec runs argv on node n within VMCommand and returns its stdout.
func (l *Lab) Exec(n topology.Node, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), VMCommand)
	defer cancel()
	out, err := l.Agent(n).Exec(ctx, argv...)
	GinkgoWriter.Printf("%s$ %s\n%s", n.Name, strings.Join(argv, " "), out)
	if err != nil {
		GinkgoWriter.Printf("%s: %v\n", n.Name, err)
	}
	return string(out), err
}

// WaitVMs waits until every VM of the plan answers a command over SSH on its lab address.
func (l *Lab) WaitVMs() {
	for _, n := range l.Plan.VMs() {
		By(fmt.Sprintf("waiting for %s to answer SSH on %s", n.Name, n.IP))
		Eventually(func() error {
			_, err := l.Exec(n, "true")
			return err
		}, VMReady, 2*time.Second).Should(Succeed(), "ssh vagrant@%s (%s)", n.IP, n.Name)
	}
}

// Endpoint returns node n as a matrix endpoint, using the suite's shared runner for it.
func (l *Lab) Endpoint(n topology.Node) matrix.Endpoint {
	e := matrix.Container(l.Docker, n)
	if n.Kind == topology.KindVM {
		e = matrix.VM(n, "")
	}
	e.Agent = l.Agent(n)
	return e
}

// Endpoints returns the matrix endpoints of the lab: its containers, its VMs when vms, and
// the host on the gateway address.
func (l *Lab) Endpoints(vms bool) []matrix.Endpoint {
	var out []matrix.Endpoint
	for _, n := range l.Plan.Nodes {
		if n.Kind == topology.KindContainer || vms {
			out = append(out, l.Endpoint(n))
		}
	}
	return append(out, matrix.Gateway(l.Plan, Agent()))
}
