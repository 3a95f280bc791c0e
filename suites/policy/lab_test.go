package policy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"hybridlab/matrix"
	"hybridlab/policy"
	"hybridlab/probes/remote"
	"hybridlab/suites/labctl"
	"hybridlab/topology"
)

// The suite's own lab: its name, bridge and subnets belong to this suite alone.
const (
	labName = "hlq"
	labHead = "name: " + labName + "\nbridge: br-hlq\nsubnet: 10.0.12.0/24\n" +
		"management: {subnet: 10.0.13.0/24}\n"
	labNodes = "containers: [{name: web}, {name: db}, {name: client}, {name: probe}]\n"
	labVMs   = "vms: [{name: base1, role: base}, {name: docker1, role: docker}]\n"
	tablePfx = "hybridlab_" + labName
	// labSegmented adds segment far, which the host routes to, with two containers of its
	// own; main keeps three containers.
	labSegmented = labHead +
		"segments: [{name: far, bridge: br-hlq-far, subnet: 10.0.14.0/24}]\n" +
		"containers: [{name: web}, {name: db}, {name: client},\n" +
		"  {name: far1, segment: far}, {name: far2, segment: far}]\n"
)

// testLab is the suite's lab: a lab file in a temporary directory, its plan, and the
// endpoints the matrix probes, the host on the gateway among them.
type testLab struct {
	file string
	plan *topology.Plan
	eps  []endpoint
}

// newTestLab writes yaml to a lab file of its own; the file lives until the container's
// cleanups have run.
func newTestLab(yaml string) *testLab {
	l := &testLab{file: filepath.Join(GinkgoT().TempDir(), "lab.yaml")}
	l.rewrite(yaml)
	return l
}

// rewrite replaces the lab file and reloads its plan; the host changes only at the next up.
func (l *testLab) rewrite(yaml string) {
	Expect(os.WriteFile(l.file, []byte(yaml), 0o644)).To(Succeed())
	l.plan = labctl.Plan(l.file)
	Expect(l.plan.Lab).To(Equal(labName))
}

// up runs `setup up` (with --vms=false unless vms) and registers the lab's `setup down`.
// An up that outlives its timeout is stopped (SIGTERM, as Ctrl-C) before the down: it holds
// the lab's lock, and down would refuse to run beside it.
func (l *testLab) up(vms bool) {
	args, timeout := []string{"up", "-f", l.file}, labctl.UpVMs
	if !vms {
		args, timeout = append(args, "--vms=false"), labctl.UpNetwork
	}
	s := labctl.Setup(setupBin, args...)
	DeferCleanup(func() {
		if s.ExitCode() == -1 {
			GinkgoWriter.Printf("cleanup: stopping setup %s\n", strings.Join(args, " "))
			stop(s)
		}
		down := labctl.Setup(setupBin, "down", "-f", l.file).Wait(labctl.Down)
		if down.ExitCode() != 0 {
			GinkgoWriter.Printf("cleanup: setup down -f %s exited %d\n", l.file,
				down.ExitCode())
		}
	})
	Eventually(s, timeout).Should(gexec.Exit(0), "setup %s", strings.Join(args, " "))
}

// stop ends a running setup as Ctrl-C would, and kills it when it does not exit in time.
func stop(s *gexec.Session) {
	s.Terminate()
	select {
	case <-s.Exited:
	case <-time.After(labctl.Command):
		s.Kill()
		<-s.Exited
	}
}

// serveOnHost runs the agent's TCP and UDP echo on every segment's gateway address until
// the container ends: the host runs no `probe serve` of its own. One server per address, so
// that UDP answers come from the address asked.
func (l *testLab) serveOnHost() {
	for _, gw := range l.plan.Gateways() {
		hp := func(port int) string { return net.JoinHostPort(gw.String(), fmt.Sprint(port)) }
		proc, err := remote.Local{Path: agentBin}.Start(context.Background(), "serve",
			"--tcp", hp(matrix.EchoTCPPort), "--udp", hp(matrix.EchoUDPPort), "--sink", "",
			"--http", "")
		Expect(err).NotTo(HaveOccurred(), "start the host's echo server on %s", gw)
		DeferCleanup(func() { _ = proc.Stop(2 * time.Second) })
		GinkgoWriter.Printf("host echo server: %s\n", proc.Ready)
	}
}

// endpoints are the lab's containers (docker exec), its VMs when vms (SSH to the lab
// address), then the host on each segment's gateway (the agent binary run locally): "host"
// on main, "host-SEGMENT" on the others.
func (l *testLab) endpoints(vms bool) []endpoint {
	var out []endpoint
	for _, n := range l.plan.Nodes {
		t := target{name: n.Name, ip: n.IP}
		switch {
		case n.Kind == topology.KindContainer:
			out = append(out, endpoint{target: t, node: n, ping: []string{"ping"},
				agent: remote.DockerExec{API: docker, Container: n.Object}})
		case vms:
			s := &remote.SSH{Addr: n.IP.String()}
			DeferCleanup(s.Close)
			out = append(out, endpoint{target: t, node: n, ping: []string{"ping"}, agent: s})
		}
	}
	for _, t := range hostTargets(l.plan) {
		out = append(out, endpoint{target: t, ping: []string{"busybox", "ping"},
			agent: remote.Local{Path: agentBin}})
	}
	return out
}

// hostTargets are the host on each segment's gateway, main first.
func hostTargets(p *topology.Plan) []target {
	var out []target
	for _, seg := range p.AllSegments() {
		name := hostName
		if seg.Name != topology.MainSegment {
			name += "-" + seg.Name
		}
		out = append(out, target{name: name, ip: seg.Gateway, host: true})
	}
	return out
}

func (l *testLab) endpoint(name string) endpoint {
	for _, e := range l.eps {
		if e.name == name {
			return e
		}
	}
	Fail(fmt.Sprintf("lab %q has no endpoint %q", labName, name))
	return endpoint{}
}

// predict is what the lab file's policies let through among the lab's endpoints.
func (l *testLab) predict() prediction {
	var ts []target
	for _, e := range l.eps {
		ts = append(ts, e.target)
	}
	want, err := predict(l.plan, l.plan.Policies, ts)
	Expect(err).NotTo(HaveOccurred())
	return want
}

// counters reads the policy counters of `setup status --json`, by rule name.
func (l *testLab) counters() map[string]policy.RuleCounter {
	ctx, cancel := context.WithTimeout(context.Background(), labctl.Command)
	defer cancel()
	out, err := exec.CommandContext(ctx, setupBin, "status", "-f", l.file, "--json").Output()
	Expect(err).NotTo(HaveOccurred(), "setup status -f %s --json", l.file)
	var st struct {
		Policy []policy.RuleCounter `json:"policy"`
	}
	Expect(json.Unmarshal(out, &st)).To(Succeed(), "parse setup status --json")
	m := map[string]policy.RuleCounter{}
	for _, c := range st.Policy {
		m[c.Name] = c
	}
	return m
}

// waitVMs waits until every VM answers a command over SSH on its lab address.
func (l *testLab) waitVMs() {
	for _, e := range l.eps {
		if e.node.Kind != topology.KindVM {
			continue
		}
		By(fmt.Sprintf("waiting for %s to answer SSH on %s", e.name, e.ip))
		Eventually(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), labctl.VMCommand)
			defer cancel()
			_, err := e.agent.Exec(ctx, "true")
			return err
		}).WithTimeout(labctl.VMReady).WithPolling(2*time.Second).Should(Succeed(),
			"ssh vagrant@%s (%s)", e.ip, e.name)
	}
}

// skipUnlessLibvirtIsFree skips when libvirt runs VMs of another lab: a second set of TCG
// guests on this host would starve both.
func skipUnlessLibvirtIsFree() {
	out, err := labctl.Run("virsh", "list", "--name")
	Expect(err).NotTo(HaveOccurred(), "virsh list --name")
	var others []string
	for _, name := range strings.Fields(out) {
		if !strings.HasPrefix(name, labName+"-") {
			others = append(others, name)
		}
	}
	if len(others) > 0 {
		Skip(fmt.Sprintf("libvirt runs VMs of other labs (%s); the VM policy specs need "+
			"the host's libvirt to themselves", strings.Join(others, ", ")))
	}
}

// nftTables lists the host's nft tables of this lab (`nft list tables`).
func nftTables() []string {
	out, err := labctl.Run("nft", "list", "tables")
	Expect(err).NotTo(HaveOccurred(), "nft list tables")
	var mine []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, tablePfx) {
			mine = append(mine, strings.TrimSpace(line))
		}
	}
	return mine
}
