package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"hybridlab/policy"
	"hybridlab/provision/bridge"
	"hybridlab/provision/containers"
	"hybridlab/provision/deps"
	"hybridlab/provision/dnsmasq"
	"hybridlab/provision/guard"
	"hybridlab/topology"
)

// DownReport says what Down removed, what it kept on purpose, and what it
// found left over when it checked afterwards.
type DownReport struct {
	Removed []string `json:"removed"`
	Kept    []string `json:"kept,omitempty"`
	Residue []string `json:"residue,omitempty"`
	Seconds float64  `json:"seconds"`
}

// ErrResidue is returned when Down's final check still finds lab objects.
var ErrResidue = errors.New("lab objects left after down")

// Down removes every host object of the plan's lab — found by label, tag
// or name prefix, not only by the record, so it also cleans up after an
// `up` that was killed before it could write its record — then checks that
// none is left. Objects the lab adopted rather than created stay. A lab
// that is not up is not an error.
func Down(ctx context.Context, p *topology.Plan, opts Options) (*DownReport, error) {
	start := time.Now()
	lock, err := AcquireLock(p.Lab)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	rec, err := LoadRecord(p.Lab)
	if err != nil {
		return nil, err
	}
	d := &downRun{plan: p, opts: &opts, rec: rec, rep: &DownReport{}}
	defer d.close()
	steps := []step{
		{"vms", d.vms},
		{"containers", d.containers},
		{"dns", d.dns},
		{"bridge", d.bridge},
		{"policy", d.policy},
		{"guard", d.guard},
		{"daemons", d.daemons},
	}
	var errs []error
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			continue
		}
		opts.progress(s.name, "done")
	}
	d.rep.Residue = Residue(ctx, p)
	if len(errs) == 0 && len(d.rep.Residue) == 0 {
		if err := os.RemoveAll(StateDir(p.Lab)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(d.rep.Residue) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s", ErrResidue, strings.Join(d.rep.Residue, "; ")))
	}
	d.rep.Seconds = time.Since(start).Seconds()
	return d.rep, errors.Join(errs...)
}

type downRun struct {
	// keepBridges are bridges whose Docker network could not be removed.
	keepBridges []string
	plan        *topology.Plan
	opts        *Options
	rec         *Record
	rep         *DownReport
	docker      *client.Client
}

func (d *downRun) close() {
	if d.docker != nil {
		d.docker.Close()
	}
}

func (d *downRun) removed(format string, args ...any) {
	d.rep.Removed = append(d.rep.Removed, fmt.Sprintf(format, args...))
}

// vms destroys the lab's VMs and what vagrant-libvirt left for them. With
// libvirtd not running there is nothing of the lab's to find in it.
func (d *downRun) vms(ctx context.Context) error {
	if !socketAnswers(LibvirtSocket) {
		return nil
	}
	v, err := newVMRun()
	if err != nil {
		return err
	}
	defer v.close()
	lab := v.driver(d.plan)
	nodes, err := v.labNodes(d.plan)
	if err != nil {
		return err
	}
	running := map[string]bool{}
	if doms, err := v.labDomains(d.plan); err == nil {
		for _, dom := range doms {
			running[dom.Name] = true
		}
	}
	lines := vagrantLines(d.opts.output())
	if err := lab.Destroy(ctx, nodes, lines); err != nil {
		return err
	}
	for _, n := range nodes {
		if running[n.Object] {
			d.removed("vm %s", n.Object)
		}
	}
	if err := lab.Teardown(ctx, lines); err != nil {
		return err
	}
	return nil
}

func (d *downRun) containers(ctx context.Context) error {
	if !socketAnswers(dockerSocket) {
		return nil
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("connect to dockerd: %w", err)
	}
	d.docker = cli
	rm, err := containers.Remove(ctx, cli, d.plan.Lab)
	d.keepBridges = rm.KeptBridges
	for _, c := range rm.Containers {
		d.removed("container %s", c)
	}
	for _, n := range rm.Networks {
		d.removed("docker network %s", n)
	}
	return err
}

func (d *downRun) dns(_ context.Context) error {
	pid, err := stopDNSSync(d.plan.Lab)
	if err != nil {
		return err
	}
	if pid != 0 {
		d.removed("dns sync (pid %d)", pid)
	}
	st, _ := dnsmasq.Status(StateDir(d.plan.Lab))
	if err := dnsmasq.Stop(StateDir(d.plan.Lab)); err != nil {
		return err
	}
	if st.Running {
		d.removed("dnsmasq (pid %d)", st.PID)
	}
	return nil
}

// bridge deletes each segment's bridge only when it carries the lab's
// tag; a bridge that was there before `up` is left as it was. Bridges
// tagged with the lab that the plan no longer names (a segment removed
// from lab.yaml) go too.
func (d *downRun) bridge(_ context.Context) error {
	names := labBridges(d.plan)
	var errs []error
	for _, name := range names {
		if slices.Contains(d.keepBridges, name) {
			d.rep.Kept = append(d.rep.Kept, fmt.Sprintf("bridge %s (its docker network "+
				"still has a container that is not the lab's)", name))
			continue
		}
		errs = append(errs, d.removeBridge(name))
	}
	return errors.Join(errs...)
}

// labBridges lists the plan's bridges and every other bridge tagged with
// the lab.
func labBridges(p *topology.Plan) []string {
	names := p.Bridges()
	tagged, _ := bridge.Tagged()
	for _, st := range tagged {
		if st.Lab() == p.Lab && !slices.Contains(names, st.Name) {
			names = append(names, st.Name)
		}
	}
	return names
}

func (d *downRun) removeBridge(name string) error {
	st, err := bridge.Inspect(name)
	if bridge.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Lab() != d.plan.Lab {
		d.rep.Kept = append(d.rep.Kept, fmt.Sprintf("bridge %s (it was there before up)", name))
		return nil
	}
	if err := bridge.Remove(name, d.plan.Lab); err != nil {
		return err
	}
	d.removed("bridge %s", name)
	return nil
}

func (d *downRun) policy(_ context.Context) error {
	present, err := policy.Present(d.plan.Lab)
	if err != nil || !present {
		return err
	}
	if err := policy.Remove(d.plan.Lab); err != nil {
		return err
	}
	d.removed("nft tables inet/bridge %s", policy.TableName(d.plan.Lab))
	return nil
}

func (d *downRun) guard(_ context.Context) error {
	st, err := guard.Status(d.plan.Lab)
	if err != nil {
		return err
	}
	if left := bridgesLeft(d.plan); len(left) > 0 && st.Present {
		// Without the guard, nodes still on a kept bridge could send lab traffic out of
		// the host: it stays until the last lab bridge goes.
		d.rep.Kept = append(d.rep.Kept, fmt.Sprintf("nft table inet %s and its DOCKER-USER "+
			"accepts (bridge %s is still there; the guard stays until it goes)", st.Table,
			strings.Join(left, ", ")))
		return nil
	}
	if err := guard.Remove(d.plan.Lab); err != nil {
		return err
	}
	if st.Present {
		d.removed("nft table inet %s", st.Table)
	}
	for _, du := range st.DockerUser {
		if len(du.Rules) > 0 {
			d.removed("%s filter DOCKER-USER accepts for %s", du.Family,
				strings.Join(d.plan.Bridges(), ", "))
		}
	}
	return nil
}

// daemons stops what `up` started, only when asked: a running dockerd is
// cheap and other work on the host may use it.
func (d *downRun) daemons(ctx context.Context) error {
	// libvirtd before virtlogd, which it logs through.
	for _, name := range []string{"libvirtd", "virtlogd", "dockerd"} {
		dmn, ok := d.rec.Started[name]
		if !ok {
			continue
		}
		if !d.opts.StopDaemons {
			d.rep.Kept = append(d.rep.Kept, fmt.Sprintf("%s (pid %d, started by up; "+
				"down --stop-daemons stops it)", name, dmn.PID))
			continue
		}
		if err := deps.Stop(ctx, dmn); err != nil {
			return err
		}
		d.removed("%s (pid %d)", name, dmn.PID)
	}
	return nil
}

const dockerSocket = "/var/run/docker.sock"

func socketAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// labNodes is every VM of the lab: the plan's, and any other domain the
// lab owns (a VM added with add-vm and since dropped from the plan).
func (v *vmRun) labNodes(p *topology.Plan) ([]topology.Node, error) {
	nodes := p.VMs()
	doms, err := v.labDomains(p)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, n := range nodes {
		known[n.Object] = true
	}
	for _, dom := range doms {
		if !known[dom.Name] {
			name := strings.TrimPrefix(dom.Name, p.Lab+"-")
			nodes = append(nodes, topology.Node{Name: name, Kind: topology.KindVM,
				Object: dom.Name})
		}
	}
	return nodes, nil
}

// bridgesLeft lists the lab's bridges that still exist with the lab's tag.
func bridgesLeft(p *topology.Plan) []string {
	var out []string
	for _, name := range labBridges(p) {
		if st, err := bridge.Inspect(name); err == nil && st.Lab() == p.Lab {
			out = append(out, name)
		}
	}
	return out
}
