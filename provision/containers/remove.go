package containers

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Removed lists what Remove deleted.
type Removed struct {
	Containers []string
	Networks   []string
	// BridgeChanges lists what changed on a pre-existing bridge under a
	// removed network (Docker should leave it as it was).
	BridgeChanges []string
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
