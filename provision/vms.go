package provision

import (
	"context"
	"fmt"
	"io"
	"time"

	"hybridlab/provision/accel"
	"hybridlab/provision/box"
	"hybridlab/provision/dnsmasq"
	"hybridlab/provision/libvirt"
	"hybridlab/provision/vagrant"
	"hybridlab/topology"
)

// LibvirtSocket is where libvirtd listens.
const LibvirtSocket = "/run/libvirt/libvirt-sock"

// vmRun is the VM half of one Up: a libvirt connection and the VMs'
// Vagrant driver, made once libvirtd answers.
type vmRun struct {
	virt     *libvirt.Conn
	decision accel.Decision
	box      *box.Box
}

func newVMRun() (*vmRun, error) {
	virt, err := libvirt.Dial(LibvirtSocket)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirtd at %s: %w (start it with "+
			"'go run ./setup deps --vms')", LibvirtSocket, err)
	}
	return &vmRun{virt: virt}, nil
}

func (v *vmRun) close() {
	if v.virt != nil {
		v.virt.Close()
	}
}

func (v *vmRun) networkPrefixes() ([]topology.NamedPrefix, error) {
	return v.virt.NetworkPrefixes()
}

// BuildBox builds (or finds cached) the lab's Vagrant box with the probe
// agent inside, and adds it to Vagrant.
func BuildBox(ctx context.Context, rebuild bool, out io.Writer) (*box.Box, error) {
	agent, err := AgentBinary(ctx, out)
	if err != nil {
		return nil, err
	}
	return box.Build(ctx, box.Options{
		Name:     BoxName,
		Agent:    agent,
		Rebuild:  rebuild,
		Progress: out,
	})
}

// up builds the box, decides the accelerator and brings every VM of the
// plan up, waiting until each holds its planned lease and address.
func (v *vmRun) up(ctx context.Context, u *upRun) error {
	b, err := BuildBox(ctx, false, u.opts.output())
	if err != nil {
		return fmt.Errorf("box: %w", err)
	}
	v.box = b
	if !b.Cached {
		u.changed("box %s built in %s (%d MB)", b.Name, b.BuildTime.Round(1e9), b.Size>>20)
	}
	v.decision, err = accel.Decide(ctx, accel.Options{Override: overrideOf(u.opts.Accel),
		Kernel: b.Kernel})
	if err != nil {
		return err
	}
	if v.decision.Accel == accel.TCG {
		u.opts.progress("accel", "VMs run under QEMU TCG (software emulation, slower): %s; "+
			"--accel kvm forces KVM", v.decision.Reason)
	} else {
		u.opts.progress("accel", "VMs run under KVM: %s", v.decision.Reason)
	}
	if d, ok := accel.Cached(); ok && v.decision.Accel == accel.KVM && d.Accel == accel.TCG {
		u.opts.progress("accel", "WARNING: --accel kvm, but this host's boot probe found KVM "+
			"unusable (%s); VMs may never boot", d.Reason)
	}
	lab := v.driver(u.plan)
	nodes := u.plan.VMs()
	before := v.existing(u.plan, nodes)
	// vagrant-libvirt waits for a guest's address without a deadline; a
	// guest that never boots (a KVM that hangs) must not hang up with it.
	ctx, cancel := context.WithTimeout(ctx, VMDeadline)
	defer cancel()
	err = lab.Up(ctx, nodes, vagrant.UpOptions{
		Parallel: 2,
		Output:   vagrantLines(u.opts.output()),
		Lease:    leaseCheck(StateDir(u.plan.Lab)),
	})
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("VMs not ready within %s under %s (%s); see the serial logs in "+
			"%s/vagrant/*-serial.log", VMDeadline, v.decision.Accel, v.decision.Reason,
			StateDir(u.plan.Lab))
	}
	for _, n := range nodes {
		u.rec.created("vm", n.Object)
		if err == nil && !before[n.Object] {
			u.changed("vm %s up at %s (mac %s)", n.Object, n.IP, n.MAC)
		}
	}
	return err
}

// VMDeadline bounds bringing up a lab's VMs once the box exists: under TCG
// on two cores two VMs take about a minute.
const VMDeadline = 10 * time.Minute

// existing reports which VMs' domains run already.
func (v *vmRun) existing(p *topology.Plan, nodes []topology.Node) map[string]bool {
	out := map[string]bool{}
	doms, err := v.labDomains(p)
	if err != nil {
		return out
	}
	for _, d := range doms {
		if d.State == "running" {
			out[d.Name] = true
		}
	}
	return out
}

// labDomains lists the lab's domains: those carrying its mark, and older
// unmarked ones that are its by their Vagrantfile or planned name. A
// domain of another lab whose name starts with this lab's stays out.
func (v *vmRun) labDomains(p *topology.Plan) ([]libvirt.Domain, error) {
	return v.driver(p).Domains()
}

func (v *vmRun) driver(p *topology.Plan) *vagrant.Lab {
	cfg := vagrant.Config{
		Plan:     p,
		Accel:    v.decision.Accel,
		StateDir: StateDir(p.Lab),
		IPv6:     vagrant.HostIPv6(),
	}
	if v.box != nil {
		cfg.Box, cfg.BoxVersion = v.box.Name, v.box.Version
	}
	return vagrant.New(cfg, v.virt)
}

func overrideOf(s string) string {
	if s == "auto" {
		return ""
	}
	return s
}

// leaseCheck confirms a VM's planned lease in the lab dnsmasq's lease file.
func leaseCheck(stateDir string) vagrant.LeaseCheck {
	return func(_ context.Context, n topology.Node) (bool, error) {
		leases, err := dnsmasq.Leases(stateDir)
		if err != nil {
			return false, err
		}
		for _, l := range leases {
			if l.MAC == n.MAC && l.IP == n.IP {
				return true, nil
			}
		}
		return false, nil
	}
}

func vagrantLines(w io.Writer) vagrant.LineFunc {
	return func(node, line string) { fmt.Fprintf(w, "%s: %s\n", node, line) }
}

// checkDomains refuses planned VM domain names that a libvirt domain of someone else holds:
// vagrant-libvirt would fail on them only after the lab's network half was made.
func (v *vmRun) checkDomains(p *topology.Plan) error {
	all, err := v.virt.Domains("")
	if err != nil {
		return err
	}
	owner := v.driver(p).Owner()
	for _, n := range p.VMs() {
		for _, d := range all {
			if d.Name != n.Object || owner.Owns(d) {
				continue
			}
			who := "something else"
			if lab, ok := libvirt.MarkedLab(d.Description); ok {
				who = fmt.Sprintf("lab %q", lab)
			}
			return fmt.Errorf("libvirt domain %q (vm %s) belongs to %s: rename this lab or "+
				"the vm", d.Name, n.Name, who)
		}
	}
	return nil
}
