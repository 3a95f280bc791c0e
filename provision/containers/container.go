package containers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"golang.org/x/sync/errgroup"

	"hybridlab/topology"
)

// LabelSpec holds the hash of a container's desired settings (everything
// but the image ID, which is compared on its own).
const LabelSpec = topology.LabelPrefix + ".spec"

// Container actions reported by EnsureContainers.
const (
	ActionKept      = "kept"
	ActionStarted   = "started"
	ActionCreated   = "created"
	ActionRecreated = "recreated"
)

// Action is what EnsureContainers did to one container.
type Action struct {
	Node   string
	Name   string
	ID     string
	Action string
	// Reason says why a container was recreated.
	Reason string
}

// capabilities lets ping and ip work inside the container.
var capabilities = []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}

// EnsureContainers makes sure every container node of p runs as planned
// (`docker run -d --name OBJECT --hostname NAME --network NET --ip IP
// --mac-address MAC --dns GW --dns-search DOMAIN --cap-add NET_ADMIN
// --cap-add NET_RAW --restart no -p … --label … IMAGE CMD`), all at once.
//
// Idempotent: a running container whose image ID, IP, MAC and settings
// match is kept; a stopped one that matches is started; one that differs is
// removed and created again. A container of that name without the lab's
// label is never touched: that is an error wrapping ErrForeign. Images must
// exist (EnsureImage); nothing is pulled. The network must exist
// (EnsureNetwork). The MAC goes into the container config on API < 1.44
// and into the endpoint settings from 1.44. The returned actions are in
// plan order.
func EnsureContainers(ctx context.Context, cli client.APIClient, p *topology.Plan,
) ([]Action, error) {
	cli.NegotiateAPIVersion(ctx)
	nodes := p.Containers()
	out := make([]Action, len(nodes))
	images := &imageCache{cli: cli, ids: map[string]imageInfo{}}
	g, gctx := errgroup.WithContext(ctx)
	for i, n := range nodes {
		g.Go(func() error {
			a, err := ensureContainer(gctx, cli, p, n, images)
			out[i] = a
			return err
		})
	}
	return out, g.Wait()
}

func ensureContainer(ctx context.Context, cli client.APIClient, p *topology.Plan,
	n topology.Node, images *imageCache,
) (Action, error) {
	act := Action{Node: n.Name, Name: n.Object}
	img, err := images.get(ctx, imageRef(n))
	if err != nil {
		return act, err
	}
	want := containerSpec(p, n, img, cli.ClientVersion())

	cur, err := cli.ContainerInspect(ctx, n.Object)
	switch {
	case errdefs.IsNotFound(err):
		act.Action = ActionCreated
	case err != nil:
		return act, fmt.Errorf("inspect container %q: %w", n.Object, err)
	case !ownedBy(cur, p.Lab):
		return act, fmt.Errorf("%w: container %q exists without label %s=%s; remove or rename it",
			ErrForeign, n.Object, topology.LabelLab, p.Lab)
	default:
		act.Reason = containerDrift(cur, want, img.id, p.SegmentOf(n).Docker.Network)
		if act.Reason == "" {
			return keepOrStart(ctx, cli, act, cur)
		}
		act.Action = ActionRecreated
		if err := removeContainer(ctx, cli, cur.ID); err != nil {
			return act, err
		}
	}
	act.ID, err = createContainer(ctx, cli, n.Object, want)
	return act, err
}

func keepOrStart(ctx context.Context, cli client.APIClient, act Action,
	cur container.InspectResponse,
) (Action, error) {
	act.ID, act.Action = cur.ID, ActionKept
	if cur.State != nil && cur.State.Running {
		return act, nil
	}
	act.Action = ActionStarted
	if err := cli.ContainerStart(ctx, cur.ID, container.StartOptions{}); err != nil {
		return act, fmt.Errorf("start container %q: %w", act.Name, err)
	}
	return act, nil
}

func createContainer(ctx context.Context, cli client.APIClient, name string, s spec,
) (string, error) {
	resp, err := cli.ContainerCreate(ctx, s.config, s.host, s.net, nil, name)
	if err != nil {
		return "", fmt.Errorf("create container %q: %w", name, err)
	}
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return resp.ID, fmt.Errorf("start container %q: %w", name, err)
	}
	return resp.ID, nil
}

func removeContainer(ctx context.Context, cli client.APIClient, id string) error {
	err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %q: %w", id, err)
	}
	return nil
}

func ownedBy(c container.InspectResponse, lab string) bool {
	return c.Config != nil && c.Config.Labels[topology.LabelLab] == lab
}

// spec is the full create request for one container.
type spec struct {
	config *container.Config
	host   *container.HostConfig
	net    *network.NetworkingConfig
	ip     string
	mac    string
	hash   string
}

func imageRef(n topology.Node) string {
	if n.Image == "" {
		return topology.DefaultImage
	}
	return n.Image
}

// containerSpec builds the create request for node n at API version api.
// The container joins its segment's network and uses that segment's
// gateway for DNS and published ports.
func containerSpec(p *topology.Plan, n topology.Node, img imageInfo, api string) spec {
	seg := p.SegmentOf(n)
	exposed, bindings, _ := nat.ParsePortSpecs(publishOnGateway(seg.Gateway, n.Publish))
	cmd := n.Command
	if len(cmd) == 0 {
		cmd = img.command
	}
	labels := maps.Clone(p.Labels)
	labels[topology.LabelNode] = n.Name
	labels[topology.LabelRole] = n.Role

	s := spec{ip: n.IP.String(), mac: n.MAC}
	s.config = &container.Config{
		Image: imageRef(n), Hostname: n.Name, Cmd: cmd, ExposedPorts: exposed, Labels: labels,
	}
	s.host = &container.HostConfig{
		NetworkMode:   container.NetworkMode(seg.Docker.Network),
		DNS:           []string{seg.Gateway.String()},
		DNSSearch:     []string{p.Domain},
		CapAdd:        capabilities,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		PortBindings:  bindings,
	}
	ep := &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: s.ip}}
	if versions.LessThan(api, "1.44") {
		s.config.MacAddress = n.MAC //nolint:staticcheck // the only place for it before 1.44
	} else {
		ep.MacAddress = n.MAC
	}
	s.net = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		seg.Docker.Network: ep,
	}}
	s.hash = specHash(s)
	labels[LabelSpec] = s.hash
	return s
}

func specHash(s spec) string {
	js, _ := json.Marshal([]any{s.config, s.host, s.ip, s.mac})
	sum := sha256.Sum256(js)
	return hex.EncodeToString(sum[:])[:32]
}

// containerDrift says how cur differs from want, or "" when it matches.
func containerDrift(cur container.InspectResponse, want spec, imageID, netName string) string {
	if cur.Image != imageID {
		return fmt.Sprintf("image %s, want %s", short(cur.Image), short(imageID))
	}
	if cur.Config == nil || cur.Config.Labels[LabelSpec] != want.hash {
		return "settings changed"
	}
	if cur.NetworkSettings == nil || cur.NetworkSettings.Networks[netName] == nil {
		return "not on network " + netName
	}
	ep := cur.NetworkSettings.Networks[netName]
	if ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != want.ip {
		return fmt.Sprintf("ip %s, want %s", ep.IPAddress, want.ip)
	}
	if ep.MacAddress != "" && ep.MacAddress != want.mac {
		return fmt.Sprintf("mac %s, want %s", ep.MacAddress, want.mac)
	}
	return ""
}

func short(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}

// imageInfo is what a container needs from its image.
type imageInfo struct {
	id      string
	command []string
}

// imageCache inspects each image once per EnsureContainers call.
type imageCache struct {
	cli client.APIClient
	mu  sync.Mutex
	ids map[string]imageInfo
}

func (c *imageCache) get(ctx context.Context, ref string) (imageInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if info, ok := c.ids[ref]; ok {
		return info, nil
	}
	img, err := c.cli.ImageInspect(ctx, ref)
	if err != nil {
		return imageInfo{}, fmt.Errorf("inspect image %q: %w", ref, err)
	}
	info := imageInfo{id: img.ID}
	// Lab images say whether they hold the agent; other images keep
	// their own command.
	if img.Config != nil {
		switch img.Config.Labels[LabelAgent] {
		case "true":
			info.command = agentCommand
		case "false":
			info.command = idleCommand
		}
	}
	c.ids[ref] = info
	return info, nil
}

// publishOnGateway binds published ports to the gateway address of the
// container's segment only: VMs and the host reach them there, and
// docker-proxy never listens on the uplink (a wildcard bind would offer lab
// services to the network). The specs were validated by topology as
// HOST:CONTAINER[/proto].
func publishOnGateway(gw netip.Addr, specs []string) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = gw.String() + ":" + s
	}
	return out
}

// CheckContainers reports, without changing anything, a container of one of the plan's
// names that is not the lab's (no label, or another lab's): EnsureContainers would refuse
// it only after the lab's network and bridges were made.
func CheckContainers(ctx context.Context, cli client.APIClient, p *topology.Plan) error {
	for _, n := range p.Containers() {
		cur, err := cli.ContainerInspect(ctx, n.Object)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("inspect container %q: %w", n.Object, err)
		}
		if ownedBy(cur, p.Lab) {
			continue
		}
		owner := ""
		if cur.Config != nil {
			owner = cur.Config.Labels[topology.LabelLab]
		}
		if owner != "" {
			return fmt.Errorf("%w: container %q (node %s) belongs to lab %q: rename this lab "+
				"or the node", ErrForeign, n.Object, n.Name, owner)
		}
		return fmt.Errorf("%w: container %q (node %s) exists without label %s=%s: remove it "+
			"(docker rm -f %s) or rename the node", ErrForeign, n.Object, n.Name,
			topology.LabelLab, p.Lab, n.Object)
	}
	return nil
}

// CheckImages reports, without changing anything, a container whose image is not on this
// host. The lab pulls nothing (no registry is reachable); the default image is built by up.
func CheckImages(ctx context.Context, cli client.APIClient, p *topology.Plan) error {
	seen := map[string]bool{}
	for _, n := range p.Containers() {
		ref := imageRef(n)
		if ref == topology.DefaultImage || seen[ref] {
			continue
		}
		seen[ref] = true
		_, err := cli.ImageInspect(ctx, ref)
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("container %q: image %q is not on this host, and the lab pulls "+
				"nothing: load or build it first (docker load, docker import, docker build), "+
				"or drop image: to use %s", n.Name, ref, topology.DefaultImage)
		}
		if err != nil {
			return fmt.Errorf("inspect image %q: %w", ref, err)
		}
	}
	return nil
}
