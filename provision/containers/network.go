package containers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"hybridlab/topology"
)

// Docker bridge driver options the lab sets.
const (
	optBridgeName = "com.docker.network.bridge.name"
	optMTU        = "com.docker.network.driver.mtu"
	// optICC stays "true": Docker adds `-i BR -o BR -j ACCEPT` to FORWARD
	// only with inter-container communication on, and that rule is what lets
	// VM<->container frames through when br_netfilter sends bridged traffic
	// to a FORWARD chain with policy DROP.
	optICC = "com.docker.network.bridge.enable_icc"
	// optMasquerade is "false" on the networks of a lab with several
	// segments: Docker would otherwise SNAT traffic the host routes from one
	// segment to another (`-s SUBNET ! -o BR -j MASQUERADE`), and the far
	// side would see the gateway instead of the sender.
	optMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
)

// Sentinel errors callers branch on.
var (
	// ErrOverlap: another Docker network holds an overlapping subnet.
	ErrOverlap = errors.New("subnet overlaps another docker network")
	// ErrMismatch: the lab's network exists with other settings.
	ErrMismatch = errors.New("docker network differs from the plan")
	// ErrNoBridge: the lab bridge does not exist, so Docker would create
	// (and later delete) one of its own.
	ErrNoBridge = errors.New("lab bridge missing")
	// ErrBridgeChanged: a Docker operation changed the lab bridge; the
	// caller re-ensures the bridge.
	ErrBridgeChanged = errors.New("docker changed the lab bridge")
	// ErrForeign: an object with a lab name exists but is not the lab's.
	ErrForeign = errors.New("object not owned by the lab")
)

// Network is the lab's Docker network after EnsureNetwork.
type Network struct {
	ID     string
	Name   string
	Bridge string
	// Created is false when an existing network was adopted.
	Created bool
	// BridgeChanges lists what changed on the bridge during the call.
	BridgeChanges []string
}

// EnsureNetwork makes sure the plan's Docker network exists and is bound
// to the existing lab bridge (`docker network create -d bridge --subnet S
// --gateway GW --ip-range R --aux-address … -o
// com.docker.network.bridge.name=BR -o com.docker.network.driver.mtu=MTU
// --label io.hybridlab.lab=LAB NAME`).
//
// Idempotent: a network of that name with the same settings is adopted; one
// with other settings is an error wrapping ErrMismatch that names each
// difference. Before creating, it fails with ErrOverlap naming any other
// Docker network whose subnet overlaps the plan's, with ErrNoBridge when
// the bridge is missing or lacks the gateway address, and with ErrMismatch
// when its MTU is not the plan's. It snapshots the
// bridge before and after and returns ErrBridgeChanged, with the changes in
// the result, when Docker altered it.
func EnsureNetwork(ctx context.Context, cli client.APIClient, p *topology.Plan) (Network, error) {
	return ensureNetwork(ctx, cli, p, p.Routed())
}

// EnsureNetworks is EnsureNetwork for every segment of p, main first: one
// Docker network per segment bridge. On a lab with several segments the
// networks do not masquerade, so addresses survive the host's routing.
func EnsureNetworks(ctx context.Context, cli client.APIClient, p *topology.Plan) ([]Network, error) {
	var out []Network
	for _, s := range p.AllSegments() {
		n, err := ensureNetwork(ctx, cli, p.View(s.Name), p.Routed())
		out = append(out, n)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// CheckNetworks reports, without changing anything, a Docker network of one
// of the plan's names that exists with other settings (the error
// EnsureNetworks would return), so `up` can refuse before its first change.
func CheckNetworks(ctx context.Context, cli client.APIClient, p *topology.Plan) error {
	for _, s := range p.AllSegments() {
		view := p.View(s.Name)
		cur, err := cli.NetworkInspect(ctx, view.Docker.Network, network.InspectOptions{})
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("inspect docker network %q: %w", view.Docker.Network, err)
		}
		if err := mismatch(view, networkOptions(view, p.Routed()), cur); err != nil {
			return err
		}
	}
	return nil
}

// mismatch is the error for an existing network cur that differs from want,
// or nil.
func mismatch(p *topology.Plan, want network.CreateOptions, cur network.Inspect) error {
	switch owner := cur.Labels[topology.LabelLab]; {
	case owner == "":
		return fmt.Errorf("%w: docker network %q exists without label %s=%s: remove it "+
			"(docker network rm %s) or rename the lab", ErrForeign, cur.Name, topology.LabelLab,
			p.Lab, cur.Name)
	case owner != p.Lab:
		return fmt.Errorf("%w: docker network %q belongs to lab %q: rename this lab or the "+
			"segment whose network takes that name", ErrForeign, cur.Name, owner)
	}
	diff := networkDiff(want, cur)
	if len(diff) == 0 {
		return nil
	}
	hint := ""
	if cur.Labels[topology.LabelLab] == p.Lab {
		// The lab's own network from an earlier plan (a segment added, say).
		hint = "; Docker cannot change a network in place: run 'setup down' and " +
			"'setup up' to recreate it"
	}
	return fmt.Errorf("%w: %q: %s%s", ErrMismatch, cur.Name, strings.Join(diff, "; "), hint)
}

func ensureNetwork(ctx context.Context, cli client.APIClient, p *topology.Plan, routed bool,
) (Network, error) {
	before, err := checkBridge(p)
	if err != nil {
		return Network{}, err
	}
	want := networkOptions(p, routed)
	nw := Network{Name: p.Docker.Network, Bridge: p.Bridge.Name}

	cur, err := cli.NetworkInspect(ctx, nw.Name, network.InspectOptions{})
	switch {
	case err == nil:
		if err := mismatch(p, want, cur); err != nil {
			return Network{}, err
		}
		nw.ID = cur.ID
	case errdefs.IsNotFound(err):
		if nw.ID, err = createNetwork(ctx, cli, nw.Name, want); err != nil {
			return Network{}, err
		}
		nw.Created = true
	default:
		return Network{}, fmt.Errorf("inspect docker network %q: %w", nw.Name, err)
	}
	return nw, bridgeAfter(before, &nw.BridgeChanges)
}

// checkBridge verifies the lab bridge exists with the gateway address and
// returns its snapshot.
func checkBridge(p *topology.Plan) (BridgeState, error) {
	st, err := SnapshotBridge(p.Bridge.Name)
	if err != nil {
		return BridgeState{}, fmt.Errorf("%w: %w", ErrNoBridge, err)
	}
	if !slices.Contains(st.Addrs, p.Bridge.Address.String()) {
		return BridgeState{}, fmt.Errorf("%w: bridge %q lacks gateway address %s (has %v)",
			ErrNoBridge, p.Bridge.Name, p.Bridge.Address, st.Addrs)
	}
	// Docker gives each veth the network's MTU option; a bridge with
	// another MTU would mix MTUs on one segment.
	if st.MTU != p.MTU {
		return BridgeState{}, fmt.Errorf("%w: bridge %q has mtu %d, plan says %d",
			ErrMismatch, p.Bridge.Name, st.MTU, p.MTU)
	}
	return st, nil
}

func bridgeAfter(before BridgeState, changes *[]string) error {
	after, err := SnapshotBridge(before.Name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBridgeChanged, err)
	}
	*changes = before.Changes(after)
	if len(*changes) > 0 {
		return fmt.Errorf("bridge %q: %w: %v", before.Name, ErrBridgeChanged, *changes)
	}
	return nil
}

func networkOptions(p *topology.Plan, routed bool) network.CreateOptions {
	aux := map[string]string{}
	for k, a := range p.Docker.AuxAddresses {
		aux[k] = a.String()
	}
	opts := map[string]string{
		optBridgeName: p.Bridge.Name,
		optMTU:        strconv.Itoa(p.MTU),
		optICC:        "true",
		optMasquerade: strconv.FormatBool(!routed),
	}
	return network.CreateOptions{
		Driver: "bridge",
		IPAM: &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{
			Subnet:     p.Subnet.String(),
			IPRange:    p.Docker.IPRange.String(),
			Gateway:    p.Gateway.String(),
			AuxAddress: aux,
		}}},
		Options: opts,
		Labels:  maps.Clone(p.Labels),
	}
}

func createNetwork(ctx context.Context, cli client.APIClient, name string,
	want network.CreateOptions,
) (string, error) {
	all, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list docker networks: %w", err)
	}
	subnet := netip.MustParsePrefix(want.IPAM.Config[0].Subnet)
	if other, p, ok := overlapping(all, subnet, name); ok {
		return "", fmt.Errorf("create docker network %q: %w: %q holds %s",
			name, ErrOverlap, other, p)
	}
	resp, err := cli.NetworkCreate(ctx, name, want)
	if err != nil {
		return "", fmt.Errorf("create docker network %q: %w", name, err)
	}
	return resp.ID, nil
}

// overlapping returns the first network other than self with a subnet that
// overlaps subnet.
func overlapping(all []network.Summary, subnet netip.Prefix, self string) (string, string, bool) {
	for _, n := range all {
		if n.Name == self {
			continue
		}
		for _, c := range n.IPAM.Config {
			p, err := netip.ParsePrefix(c.Subnet)
			if err == nil && p.Overlaps(subnet) {
				return n.Name, c.Subnet, true
			}
		}
	}
	return "", "", false
}

// networkDiff lists each setting in which the existing network cur differs
// from want, as "field: have X, want Y".
func networkDiff(want network.CreateOptions, cur network.Inspect) []string {
	var out []string
	add := func(field, have, wantV string) {
		if have != wantV {
			out = append(out, fmt.Sprintf("%s: have %q, want %q", field, have, wantV))
		}
	}
	add("driver", cur.Driver, want.Driver)
	for _, k := range slices.Sorted(maps.Keys(want.Options)) {
		have, ok := cur.Options[k]
		if !ok && (k == optICC || k == optMasquerade) {
			have = "true" // Docker's default when the option is absent
		}
		if k == optMasquerade && have == "false" {
			// Made for a lab with segments; a lab of one segment works either way.
			continue
		}
		add("option "+k, have, want.Options[k])
	}
	for _, k := range slices.Sorted(maps.Keys(want.Labels)) {
		add("label "+k, cur.Labels[k], want.Labels[k])
	}
	w := want.IPAM.Config[0]
	if len(cur.IPAM.Config) != 1 {
		return append(out, fmt.Sprintf("ipam: have %d configs, want 1", len(cur.IPAM.Config)))
	}
	c := cur.IPAM.Config[0]
	add("subnet", c.Subnet, w.Subnet)
	add("gateway", c.Gateway, w.Gateway)
	add("ip-range", c.IPRange, w.IPRange)
	if d := auxDiff(c.AuxAddress, w.AuxAddress); d != "" {
		out = append(out, d)
	}
	return out
}

// auxDiff summarises how two aux-address maps differ: the counts and the first few entries
// that differ (a VM block gives one entry per address, a hundred or more).
func auxDiff(have, want map[string]string) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if have[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s: have %q, want %q", k, have[k], want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: have %q, want none", k, have[k]))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	more := ""
	if len(diffs) > 3 {
		more = fmt.Sprintf(", … %d more", len(diffs)-3)
		diffs = diffs[:3]
	}
	return fmt.Sprintf("aux-addresses: have %d, want %d (%s%s)", len(have), len(want),
		strings.Join(diffs, ", "), more)
}

// labelFilter selects the objects of one lab.
func labelFilter(lab string) filters.Args {
	return filters.NewArgs(filters.Arg("label", topology.LabelLab+"="+lab))
}
