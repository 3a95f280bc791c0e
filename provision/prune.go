package provision

import (
	"context"
	"errors"
	"slices"

	"hybridlab/provision/bridge"
	"hybridlab/provision/containers"
)

// prune removes what an earlier up made for segments the plan no longer has: the lab's
// Docker networks of other names, the lab's containers on them, and bridges tagged with the
// lab that the plan does not name. The guard, rebuilt from the plan, has already dropped
// their rules.
func (u *upRun) prune(ctx context.Context) error {
	pr, err := containers.PruneNetworks(ctx, u.docker, u.plan.Lab, u.plan.DockerNetworks())
	for _, c := range pr.Containers {
		u.changed("container %s removed (its segment is no longer in the plan)", c)
	}
	for _, n := range pr.Networks {
		u.changed("docker network %s removed (its segment is no longer in the plan)", n)
	}
	if err != nil {
		return err
	}
	tagged, err := bridge.Tagged()
	if err != nil {
		return err
	}
	var errs []error
	for _, st := range tagged {
		if st.Lab() != u.plan.Lab || slices.Contains(u.plan.Bridges(), st.Name) {
			continue
		}
		if err := bridge.Remove(st.Name, u.plan.Lab); err != nil {
			errs = append(errs, err)
			continue
		}
		u.changed("bridge %s removed (its segment is no longer in the plan)", st.Name)
	}
	return errors.Join(errs...)
}
