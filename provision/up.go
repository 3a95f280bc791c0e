package provision

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"golang.org/x/sync/errgroup"

	"hybridlab/doctor"
	"hybridlab/policy"
	"hybridlab/provision/bridge"
	"hybridlab/provision/containers"
	"hybridlab/provision/dnsmasq"
	"hybridlab/provision/guard"
	"hybridlab/topology"
)

// Up builds the lab the plan describes and leaves it running. It is
// idempotent: objects that already match the plan are left alone, so a
// second Up changes nothing and an Up after an interrupted one finishes
// the job. Every check that can refuse the plan runs before the first host
// change. Up holds the lab's lock for its whole run.
func Up(ctx context.Context, p *topology.Plan, opts Options) (*Record, error) {
	lock, err := AcquireLock(p.Lab)
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	rec, err := LoadRecord(p.Lab)
	if err != nil {
		return nil, err
	}
	rec.Completed = false
	rec.Timings = nil
	if opts.LabFile != "" {
		rec.LabFile = opts.LabFile
	}
	u := &upRun{plan: p, opts: &opts, rec: rec}
	defer u.close()

	steps := []step{
		{"deps", u.deps},
		{"preflight", u.preflight},
		{"guard", u.guard},
		{"bridge", u.bridge},
		{"image", u.image},
		{"network", u.network},
		{"dns", u.dns},
		{"dnssync", u.dnssync},
		{"forward", u.forward},
		{"policy", u.policy},
		{"nodes", u.nodes},
		{"verify", u.verify},
	}
	fresh := len(rec.Created) == 0 && len(rec.Adopted) == 0
	if err := runSteps(ctx, rec, u.opts, steps); err != nil {
		if errors.Is(err, ErrRefused) && fresh {
			// Nothing was made: leave no state directory behind either.
			_ = os.RemoveAll(StateDir(p.Lab))
		}
		return rec, err
	}
	rec.Completed = true
	if err := rec.Save(); err != nil {
		return rec, err
	}
	u.summary()
	return rec, nil
}

// upRun carries one Up's state between its steps.
type upRun struct {
	plan    *topology.Plan
	opts    *Options
	rec     *Record
	docker  *client.Client
	img     containers.Image
	changes []string
	vms     *vmRun
}

func (u *upRun) close() {
	if u.docker != nil {
		u.docker.Close()
	}
	if u.vms != nil {
		u.vms.close()
	}
}

func (u *upRun) changed(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	u.changes = append(u.changes, msg)
	u.opts.progress("change", "%s", msg)
}

func (u *upRun) summary() {
	if len(u.changes) == 0 {
		u.opts.progress("summary", "nothing changed: the lab already matched the plan")
		return
	}
	u.opts.progress("summary", "%d changes", len(u.changes))
}

// ErrRefused marks an Up that stopped before its first host change.
var ErrRefused = errors.New("refused before any host change")

// preflight runs every check that can refuse the plan, before the first
// host change: subnets that overlap a route, a Docker or a libvirt network,
// a bridge or a Docker network of the plan's name that exists with other
// settings, and a probe agent that cannot be built.
func (u *upRun) preflight(ctx context.Context) error {
	if err := u.checks(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return nil
}

func (u *upRun) checks(ctx context.Context) error {
	if _, err := AgentBinary(ctx, u.opts.output()); err != nil {
		return err
	}
	inv, err := topology.ReadInventory(ctx)
	if err != nil {
		return err
	}
	if err := u.connectDocker(ctx); err != nil {
		return err
	}
	inv.DockerNetworks, err = dockerPrefixes(ctx, u.docker)
	if err != nil {
		return err
	}
	if err := containers.CheckNetworks(ctx, u.docker, u.plan); err != nil {
		return err
	}
	if err := containers.CheckContainers(ctx, u.docker, u.plan); err != nil {
		return err
	}
	if err := containers.CheckImages(ctx, u.docker, u.plan); err != nil {
		return err
	}
	if u.wantsVMs() {
		if err := u.vms.checkDomains(u.plan); err != nil {
			return err
		}
	}
	if u.vms != nil {
		inv.LibvirtNetworks, err = u.vms.networkPrefixes()
		if err != nil {
			return err
		}
	}
	var conflicts []topology.Conflict
	for _, c := range topology.HostConflicts(u.plan, inv) {
		// A lab without VMs this time makes no management network: its subnet is not used.
		if c.Field == "management.subnet" && !u.wantsVMs() {
			continue
		}
		conflicts = append(conflicts, c)
	}
	if len(conflicts) > 0 {
		lines := make([]string, len(conflicts))
		for i, c := range conflicts {
			lines[i] = c.String()
		}
		return fmt.Errorf("the plan clashes with this host:\n  %s", strings.Join(lines, "\n  "))
	}
	for _, s := range u.plan.AllSegments() {
		spec, err := bridge.SpecFromPlan(u.plan.View(s.Name))
		if err != nil {
			return err
		}
		if err := bridge.Check(spec); err != nil {
			return err
		}
	}
	return nil
}

func (u *upRun) connectDocker(ctx context.Context) error {
	if u.docker != nil {
		return nil
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("connect to dockerd: %w", err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return fmt.Errorf("dockerd is not answering: %w (start it with 'go run ./setup deps')", err)
	}
	u.docker = cli
	return nil
}

// guard installs the egress guard before any lab link exists, so no lab
// packet can ever leave before it is in place. The same transaction puts
// the accept for bridged lab traffic into Docker's DOCKER-USER chain (see
// package guard for why an accept in the lab's own table would not do).
func (u *upRun) guard(_ context.Context) error {
	spec := u.guardSpec()
	u.rec.created("nft", u.plan.NFTable)
	stamp := filepath.Join(StateDir(u.plan.Lab), "guard.nft")
	text := spec.Text()
	if old, err := os.ReadFile(stamp); err == nil && string(old) == text && guardCurrent(spec) {
		return nil
	}
	res, err := guard.Ensure(spec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(StateDir(u.plan.Lab), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(stamp, []byte(text), 0o644); err != nil {
		return err
	}
	mode := "dropping lab egress"
	if u.opts.AllowEgress {
		mode = "counting lab egress (--allow-egress: lab traffic MAY leave through the uplink)"
	}
	u.changed("nft table %s with %d rules, %s", res.Table, res.Rules, mode)
	for _, du := range res.DockerUser {
		u.opts.progress("guard", "%s", du)
	}
	return nil
}

// wantsVMs reports whether this up creates the plan's VMs.
func (u *upRun) wantsVMs() bool { return u.vms != nil && len(u.plan.VMs()) > 0 }

// guardSpec is the guard the plan needs now. The management network's bridge and subnet
// are guarded only while the lab has VMs or the network exists.
func (u *upRun) guardSpec() guard.Spec {
	spec := guard.SpecFromPlan(u.plan, u.opts.AllowEgress)
	if u.wantsVMs() {
		return spec
	}
	if _, err := bridge.Inspect(u.plan.Management.Bridge); err == nil {
		return spec // VMs of an earlier up may still run on it
	}
	return spec.WithoutManagement(u.plan)
}

// guardCurrent reports whether the lab table exists in the wanted mode and
// every DOCKER-USER chain there is holds the lab's accept. Ensure rebuilds
// the table (and zeroes its counters), so a second up skips it.
func guardCurrent(spec guard.Spec) bool {
	st, err := guard.Status(spec.Lab)
	if err != nil || !st.Present || st.Enforcing == spec.AllowEgress {
		return false
	}
	for _, du := range st.DockerUser {
		for _, pair := range spec.DockerUserPairs() {
			if du.Chain && !hasBridgeAccept(du.Rules, pair[0], pair[1]) {
				return false
			}
		}
	}
	return true
}

// hasBridgeAccept reports whether one of the rules accepts traffic that
// enters by in and leaves by out.
func hasBridgeAccept(rules []guard.RuleStatus, inIf, outIf string) bool {
	in, out := fmt.Sprintf("iifname %q", inIf), fmt.Sprintf("oifname %q", outIf)
	for _, r := range rules {
		if strings.Contains(r.Rule, in) && strings.Contains(r.Rule, out) &&
			strings.Contains(r.Rule, "accept") {
			return true
		}
	}
	return false
}

// bridge makes every segment's bridge, main first.
func (u *upRun) bridge(_ context.Context) error {
	for _, s := range u.plan.AllSegments() {
		if err := u.ensureBridge(u.plan.View(s.Name)); err != nil {
			return err
		}
	}
	return nil
}

func (u *upRun) ensureBridge(view *topology.Plan) error {
	spec, err := bridge.SpecFromPlan(view)
	if err != nil {
		return err
	}
	res, err := bridge.Ensure(spec)
	if err != nil {
		return err
	}
	switch {
	case res.Action == bridge.Created:
		u.rec.created("bridge", res.Name)
	case !res.Owned:
		u.rec.adopted("bridge", res.Name)
	}
	if res.Action == bridge.Created || len(res.Changes) > 0 {
		u.changed("%s", res)
	}
	return nil
}

func (u *upRun) image(ctx context.Context) error {
	agent, err := AgentBinary(ctx, u.opts.output())
	if err != nil {
		return err
	}
	img, err := containers.EnsureImage(ctx, u.docker, containers.ImageSpec{Agent: agent})
	if err != nil {
		return err
	}
	u.img = img
	if img.Built {
		u.changed("image %s built (%s)", img.Ref, shortID(img.ID))
	}
	return nil
}

func (u *upRun) network(ctx context.Context) error {
	nets, err := containers.EnsureNetworks(ctx, u.docker, u.plan)
	for _, n := range nets {
		if n.Name == "" {
			continue
		}
		u.rec.created("docker-network", n.Name)
		if n.Created {
			u.changed("docker network %s created on %s", n.Name, n.Bridge)
		}
	}
	if err != nil {
		return err
	}
	return u.prune(ctx)
}

func (u *upRun) dns(ctx context.Context) error {
	res, err := dnsmasq.Ensure(ctx, u.plan, StateDir(u.plan.Lab))
	if err != nil {
		return err
	}
	u.rec.created("dnsmasq", fmt.Sprint(res.PID))
	if res.Started {
		u.changed("dnsmasq started (pid %d) on %s", res.PID, joinList(u.plan.Gateways()))
	}
	return nil
}

// dnssync starts the process that gives containers started after up a
// name in the lab domain, and takes it away when they go.
func (u *upRun) dnssync(_ context.Context) error {
	started, err := ensureDNSSync(u.plan)
	if err != nil {
		return err
	}
	if started {
		u.changed("dns sync started (follows Docker events on %s)",
			strings.Join(u.plan.DockerNetworks(), ", "))
	}
	return nil
}

// forward re-checks the DOCKER-USER accepts once the Docker networks
// exist: dockerd may have (re)built its chains since the guard step. A lab
// with several segments needs the host to route between them: it turns on
// IPv4 forwarding (dockerd does as well when it starts).
func (u *upRun) forward(ctx context.Context) error {
	if u.plan.Routed() {
		on, err := enableForwarding()
		if err != nil {
			return err
		}
		if on {
			u.changed("net.ipv4.ip_forward set to 1 (the host routes between the lab's segments)")
		}
	}
	return u.guard(ctx)
}

// ipForward is the sysctl that lets the host route between segments.
const ipForward = "/proc/sys/net/ipv4/ip_forward"

// enableForwarding is `sysctl -w net.ipv4.ip_forward=1`; it reports
// whether the value changed.
func enableForwarding() (bool, error) {
	cur, err := os.ReadFile(ipForward)
	if err != nil {
		return false, fmt.Errorf("read net.ipv4.ip_forward: %w", err)
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
		return false, fmt.Errorf("set net.ipv4.ip_forward=1: %w", err)
	}
	return true, nil
}

// policy applies the lab's network policies before any node starts, so no
// node ever runs without them. The tables are rebuilt only when the
// rendered rules change: a rebuild zeroes their counters.
func (u *upRun) policy(_ context.Context) error {
	present, err := policy.Present(u.plan.Lab)
	if err != nil {
		return err
	}
	text := ""
	if u.plan.Policies != nil {
		if text, err = policy.Render(u.plan, u.plan.Policies); err != nil {
			return err
		}
	}
	stamp := filepath.Join(StateDir(u.plan.Lab), "policy.nft")
	if old, err := os.ReadFile(stamp); err == nil && string(old) == text && present == (text != "") {
		if present {
			u.rec.created("nft", "inet/bridge "+policy.TableName(u.plan.Lab))
		}
		return nil
	}
	res, err := policy.Ensure(u.plan, u.plan.Policies)
	if err != nil {
		return err
	}
	if res.Removed {
		u.changed("policy tables %s removed (no policies)", policy.TableName(u.plan.Lab))
	}
	if len(res.Tables) > 0 {
		u.rec.created("nft", "inet/bridge "+policy.TableName(u.plan.Lab))
		u.changed("policy %s: %d rules", strings.Join(res.Tables, ", "), res.Rules)
	}
	return os.WriteFile(stamp, []byte(text), 0o644)
}

// nodes brings containers and VMs up at the same time: container starts
// take seconds, VM boots (under TCG) most of a minute.
func (u *upRun) nodes(ctx context.Context) error {
	if vms := u.plan.VMs(); u.vms == nil && len(vms) > 0 {
		names := make([]string, len(vms))
		for i, n := range vms {
			names[i] = n.Name
		}
		u.opts.progress("nodes", "VMs left out (--vms=false): %s", strings.Join(names, ", "))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		acts, err := containers.EnsureContainers(gctx, u.docker, u.plan)
		for _, a := range acts {
			if a.Action == "" {
				continue // failed before it acted: the error says why
			}
			u.rec.created("container", a.Name)
			if a.Action != containers.ActionKept {
				u.changed("container %s %s", a.Name, a.Action)
			}
		}
		return err
	})
	if u.vms != nil {
		g.Go(func() error { return u.vms.up(gctx, u) })
	}
	return g.Wait()
}

// verify checks what Docker may have done to the bridge and that every
// container hangs off the lab bridge with its planned address.
func (u *upRun) verify(ctx context.Context) error {
	list, err := containers.List(ctx, u.docker, u.plan.Lab)
	if err != nil {
		return err
	}
	var problems []string
	for _, n := range u.plan.Containers() {
		c, ok := findContainer(list, n.Object)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("container %s is missing", n.Object))
		case c.IP != n.IP.String():
			problems = append(problems, fmt.Sprintf("container %s has ip %s, plan %s",
				n.Object, c.IP, n.IP))
		case c.Master != u.plan.SegmentOf(n).Bridge.Name:
			problems = append(problems, fmt.Sprintf("container %s: veth %s hangs off %q, not %s",
				n.Object, c.Veth, c.Master, u.plan.SegmentOf(n).Bridge.Name))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return u.recordBridge()
}

// recordBridge keeps every lab bridge as up leaves it, so the doctor can
// tell later whether something (Docker, a person) changed one.
func (u *upRun) recordBridge() error {
	u.rec.Segments = nil
	for i, name := range u.plan.Bridges() {
		b, err := bridgeBaseline(name)
		if err != nil {
			return err
		}
		if i == 0 {
			u.rec.Bridge = b
		} else {
			u.rec.Segments = append(u.rec.Segments, *b)
		}
	}
	return nil
}

func bridgeBaseline(name string) (*doctor.Bridge, error) {
	st, err := bridge.Inspect(name)
	if err != nil {
		return nil, err
	}
	b := &doctor.Bridge{Name: st.Name, MAC: st.MAC, MTU: st.MTU,
		ForwardDelay: int(st.ForwardDelay.Milliseconds() / 10), Addrs: st.Addresses}
	if st.STP {
		b.STP = 1
	}
	if st.NFCallIPTables {
		b.NFCallIptables = 1
	}
	if st.NFCallIP6Tables {
		b.NFCallIP6tables = 1
	}
	return b, nil
}

func findContainer(list []containers.Info, name string) (containers.Info, bool) {
	for _, c := range list {
		if c.Name == name {
			return c, true
		}
	}
	return containers.Info{}, false
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// dockerPrefixes lists every Docker network's subnets with the Linux bridge
// behind it: the name from the network's options, else Docker's own
// br-<id[:12]> (fault B10: never assume the derived name).
func dockerPrefixes(ctx context.Context, cli client.APIClient) ([]topology.NamedPrefix, error) {
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list docker networks: %w", err)
	}
	var out []topology.NamedPrefix
	for _, n := range nets {
		br := n.Options["com.docker.network.bridge.name"]
		if br == "" && n.Driver == "bridge" && len(n.ID) >= 12 {
			br = "br-" + n.ID[:12]
		}
		for _, c := range n.IPAM.Config {
			pfx, err := netip.ParsePrefix(c.Subnet)
			if err != nil {
				continue
			}
			out = append(out, topology.NamedPrefix{Name: n.Name, Prefix: pfx, Bridge: br})
		}
	}
	return out, nil
}

// Preflight runs up's checks that can refuse the plan — host overlaps, bridges, Docker
// networks, containers and images, VM domains of the plan's names — and changes nothing. It
// starts no daemon and installs nothing: a daemon that is not running is skipped and named in
// the returned notes, whose checks then did not run. `up --dry-run` calls it.
func Preflight(ctx context.Context, p *topology.Plan, opts Options) (notes []string, err error) {
	u := &upRun{plan: p, opts: &opts, rec: &Record{Lab: p.Lab}}
	defer u.close()
	if !socketAnswers(dockerSocket) {
		return []string{"dockerd is not running: Docker networks, containers and images " +
			"not checked ('setup deps' starts it)"}, nil
	}
	if opts.VMs && len(p.VMs()) > 0 {
		if socketAnswers(LibvirtSocket) {
			if u.vms, err = newVMRun(); err != nil {
				return nil, err
			}
		} else {
			notes = append(notes, "libvirtd is not running: libvirt networks and VM domains "+
				"not checked")
		}
	}
	return notes, u.checks(ctx)
}
