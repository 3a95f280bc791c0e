package containers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"hybridlab/topology"
)

// Removed lists what Remove deleted.
type Removed struct {
	Containers []string
	Networks   []string
	// BridgeChanges lists what changed on a pre-existing bridge under a
	// removed network (Docker should leave it as it was).
	BridgeChanges []string
	// KeptBridges are the bridges of networks Remove had to keep: a
	// container that is not the lab's is still on them.
	KeptBridges []string
}

// Remove deletes every container and network labelled with lab (`docker rm
// -f` then `docker network rm`); an object already gone counts as removed.
// A bridge that existed before its network is left in place by Docker;
// Remove snapshots each such bridge and returns ErrBridgeChanged, with the
// changes in the result, when Docker altered it. Images are kept.
func Remove(ctx context.Context, cli client.APIClient, lab string) (Removed, error) {
	var rm Removed
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilter(lab)})
	if err != nil {
		return rm, fmt.Errorf("list containers of lab %q: %w", lab, err)
	}
	for _, c := range cs {
		if err := removeContainer(ctx, cli, c.ID); err != nil {
			return rm, err
		}
		rm.Containers = append(rm.Containers, trimSlash(firstName(c.Names)))
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: labelFilter(lab)})
	if err != nil {
		return rm, fmt.Errorf("list docker networks of lab %q: %w", lab, err)
	}
	var errs []error
	for _, n := range nets {
		if err := foreignOn(ctx, cli, lab, n); err != nil {
			errs = append(errs, err)
			rm.KeptBridges = append(rm.KeptBridges, n.Options[optBridgeName])
			continue
		}
		changes, err := removeNetwork(ctx, cli, n)
		rm.BridgeChanges = append(rm.BridgeChanges, changes...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rm.Networks = append(rm.Networks, n.Name)
	}
	slices.Sort(rm.Containers)
	return rm, errors.Join(errs...)
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// removeNetwork is `docker network rm`, with a snapshot of the bridge the
// network names (when it exists) before and after.
func removeNetwork(ctx context.Context, cli client.APIClient, n network.Summary) ([]string, error) {
	br := n.Options[optBridgeName]
	before, snapErr := SnapshotBridge(br)
	err := cli.NetworkRemove(ctx, n.ID)
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("remove docker network %q: %w", n.Name, err)
	}
	if br == "" || snapErr != nil {
		return nil, nil
	}
	var changes []string
	return changes, bridgeAfter(before, &changes)
}

// Pruned lists what PruneNetworks removed.
type Pruned struct {
	Networks   []string
	Containers []string
}

// PruneNetworks removes the lab's Docker networks whose names keep is not holding (those of
// segments taken out of the lab file), with the lab's containers attached to them. A
// container on such a network that is not the lab's is an error wrapping ErrForeign, and
// that network stays.
func PruneNetworks(ctx context.Context, cli client.APIClient, lab string, keep []string,
) (Pruned, error) {
	var pr Pruned
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: labelFilter(lab)})
	if err != nil {
		return pr, fmt.Errorf("list docker networks of lab %q: %w", lab, err)
	}
	var errs []error
	for _, n := range nets {
		if slices.Contains(keep, n.Name) {
			continue
		}
		gone, err := emptyNetwork(ctx, cli, lab, n)
		pr.Containers = append(pr.Containers, gone...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := removeNetwork(ctx, cli, n); err != nil {
			errs = append(errs, err)
			continue
		}
		pr.Networks = append(pr.Networks, n.Name)
	}
	return pr, errors.Join(errs...)
}

// emptyNetwork removes the lab's containers attached to network n, running or not, and
// returns their names; any other container attached is an error.
func emptyNetwork(ctx context.Context, cli client.APIClient, lab string, n network.Summary,
) ([]string, error) {
	cs, err := containersOn(ctx, cli, n)
	if err != nil {
		return nil, err
	}
	if names := foreignNames(cs, lab); len(names) > 0 {
		return nil, fmt.Errorf("%w: container %s on docker network %q, which the lab no "+
			"longer has: remove it (docker rm -f %s) or keep the segment", ErrForeign,
			strings.Join(names, ", "), n.Name, strings.Join(names, " "))
	}
	var gone []string
	for _, c := range cs {
		if err := removeContainer(ctx, cli, c.ID); err != nil {
			return gone, err
		}
		gone = append(gone, trimSlash(firstName(c.Names)))
	}
	slices.Sort(gone)
	return gone, nil
}

// foreignOn is an error naming the containers on network n that are not the lab's.
func foreignOn(ctx context.Context, cli client.APIClient, lab string, n network.Summary) error {
	cs, err := containersOn(ctx, cli, n)
	if err != nil {
		return err
	}
	names := foreignNames(cs, lab)
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: docker network %q still has container(s) %s, not the lab's: "+
		"remove them (docker rm -f %s) and run 'go run ./setup down' again", ErrForeign, n.Name,
		strings.Join(names, ", "), strings.Join(names, " "))
}

// containersOn lists the containers attached to network n, running or not. Docker's
// network filter misses containers that were created but never started.
func containersOn(ctx context.Context, cli client.APIClient, n network.Summary,
) ([]container.Summary, error) {
	all, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers on docker network %q: %w", n.Name, err)
	}
	var out []container.Summary
	for _, c := range all {
		if onNetwork(c, n) {
			out = append(out, c)
		}
	}
	return out, nil
}

// foreignNames are the sorted names of the containers in cs not labelled with lab.
func foreignNames(cs []container.Summary, lab string) []string {
	var names []string
	for _, c := range cs {
		if c.Labels[topology.LabelLab] != lab {
			names = append(names, trimSlash(firstName(c.Names)))
		}
	}
	slices.Sort(names)
	return names
}

func onNetwork(c container.Summary, n network.Summary) bool {
	if c.HostConfig.NetworkMode == n.Name || c.HostConfig.NetworkMode == n.ID {
		return true
	}
	if c.NetworkSettings != nil {
		for name, ep := range c.NetworkSettings.Networks {
			if name == n.Name || (ep != nil && ep.NetworkID == n.ID) {
				return true
			}
		}
	}
	return false
}
