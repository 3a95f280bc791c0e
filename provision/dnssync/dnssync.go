// Package dnssync keeps the lab's DNS in step with Docker: a container
// that joins a lab network (one per segment) after `up` gets NAME.DOMAIN
// (A and PTR), and loses it when it leaves, so no name ever resolves to a
// stale address.
// Planned nodes have their records in the dnsmasq configuration already;
// dnssync only handles the others, through dnsmasq's hosts directory (no
// restart).
package dnssync

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"hybridlab/provision/dnsmasq"
	"hybridlab/topology"
)

// Syncer mirrors the containers of the lab's Docker networks into dnsmasq
// records.
type Syncer struct {
	cli      client.APIClient
	plan     *topology.Plan
	stateDir string
	// networks are the lab's Docker networks, main segment first.
	networks []string
	// names maps a container ID to the record written for it.
	names map[string]string
}

// New returns a Syncer for the Docker networks of every segment of the
// plan (`docker network ls`: LAB-net, LAB-SEG-net).
func New(cli client.APIClient, p *topology.Plan, stateDir string) *Syncer {
	return &Syncer{cli: cli, plan: p, stateDir: stateDir, names: map[string]string{},
		networks: p.DockerNetworks()}
}

// Networks returns the Docker networks the Syncer follows, main first.
func (s *Syncer) Networks() []string { return s.networks }

// RecordName is the DNS label for a container: its name without the lab's
// prefix, or "" when that is not a DNS label or is a planned node's name
// (those records come from the plan).
func (s *Syncer) RecordName(containerName string) string {
	name := strings.TrimPrefix(strings.TrimPrefix(containerName, "/"), s.plan.Lab+"-")
	name = strings.ToLower(name)
	if _, planned := s.plan.Node(name); planned || !isLabel(name) {
		return ""
	}
	return name
}

// Sync writes records for every unplanned container now on a lab network
// (`docker ps --filter network=NET` per network). It is what Run does
// first, and what an event-less caller can call.
func (s *Syncer) Sync(ctx context.Context) error {
	for _, net := range s.networks {
		list, err := s.cli.ContainerList(ctx, container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("network", net)),
		})
		if err != nil {
			return fmt.Errorf("list containers on %s: %w", net, err)
		}
		for _, c := range list {
			if err := s.add(ctx, c.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// Run syncs once, then follows Docker's network events on every lab
// network (`docker events --filter type=network --filter network=NET…`)
// until ctx ends. It returns the error that stopped the event stream.
func (s *Syncer) Run(ctx context.Context) error {
	args := filters.NewArgs(filters.Arg("type", string(events.NetworkEventType)))
	for _, net := range s.networks {
		args.Add("network", net)
	}
	msgs, errs := s.cli.Events(ctx, events.ListOptions{Filters: args})
	if err := s.Sync(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return fmt.Errorf("docker events: %w", err)
		case m := <-msgs:
			if err := s.handle(ctx, m); err != nil {
				return err
			}
		}
	}
}

func (s *Syncer) handle(ctx context.Context, m events.Message) error {
	id := m.Actor.Attributes["container"]
	if id == "" {
		return nil
	}
	switch m.Action {
	case events.ActionConnect:
		return s.add(ctx, id)
	case events.ActionDisconnect:
		if err := s.remove(id); err != nil {
			return err
		}
		// A container on two lab networks keeps its name through the
		// other one.
		return s.add(ctx, id)
	}
	return nil
}

func (s *Syncer) add(ctx context.Context, id string) error {
	info, err := s.cli.ContainerInspect(ctx, id)
	if client.IsErrNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect container %s: %w", id, err)
	}
	name := s.RecordName(info.Name)
	if name == "" || info.NetworkSettings == nil {
		return nil
	}
	ip, ok := s.labAddress(info.NetworkSettings.Networks)
	if !ok {
		return nil
	}
	if err := dnsmasq.AddRecord(s.stateDir, name, ip); err != nil {
		return err
	}
	s.names[id] = name
	return nil
}

// labAddress is the container's address on the first lab network it has
// one on (a stopped container keeps its endpoints without addresses).
func (s *Syncer) labAddress(eps map[string]*network.EndpointSettings) (netip.Addr, bool) {
	for _, net := range s.networks {
		ep, ok := eps[net]
		if !ok || ep == nil {
			continue
		}
		if ip, err := netip.ParseAddr(ep.IPAddress); err == nil {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func (s *Syncer) remove(id string) error {
	name, ok := s.names[id]
	if !ok {
		return nil
	}
	delete(s.names, id)
	return dnsmasq.RemoveRecord(s.stateDir, name)
}

func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
