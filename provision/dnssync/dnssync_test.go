package dnssync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"hybridlab/provision/dnsmasq"
	"hybridlab/topology"
)

// Test lab "hld": segments main (hld-net, 10.0.30.0/24) and b (hld-b-net,
// 10.0.31.0/24). Nothing here touches the host; Docker is faked.
const routedLab = `
name: hld
bridge: br-hld
subnet: 10.0.30.0/24
domain: lab
management:
  subnet: 10.0.32.0/24
segments:
  - name: b
    subnet: 10.0.31.0/24
containers:
  - name: c1
  - name: c3
    segment: b
`

// recordTimeout bounds waiting for Run to handle an event.
const recordTimeout = 5 * time.Second

func testPlan(t *testing.T) *topology.Plan {
	t.Helper()
	p, err := topology.PlanYAML([]byte(routedLab))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeDocker answers the three calls a Syncer makes from a table of
// containers (name and address per network) and hands out one event
// stream.
type fakeDocker struct {
	client.APIClient
	mu         sync.Mutex
	containers map[string]map[string]string
	eventArgs  map[string][]string
	msgs       chan events.Message
	errs       chan error
}

func newFake() *fakeDocker {
	return &fakeDocker{containers: map[string]map[string]string{},
		msgs: make(chan events.Message), errs: make(chan error, 1)}
}

// set puts container id (named /id) on the networks of nets with the
// address given for each; an empty address is an endpoint without one, as
// a stopped container has.
func (f *fakeDocker) set(id string, nets map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = nets
}

func (f *fakeDocker) ContainerList(_ context.Context, o container.ListOptions,
) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Summary
	for id, nets := range f.containers {
		for _, net := range o.Filters.Get("network") {
			if _, ok := nets[net]; ok {
				out = append(out, container.Summary{ID: id})
			}
		}
	}
	return out, nil
}

func (f *fakeDocker) ContainerInspect(_ context.Context, id string,
) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nets, ok := f.containers[id]
	if !ok {
		return container.InspectResponse{}, errdefs.NotFound(errors.New("no such container"))
	}
	eps := map[string]*network.EndpointSettings{}
	for net, ip := range nets {
		eps[net] = &network.EndpointSettings{IPAddress: ip}
	}
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/" + id},
		NetworkSettings:   &container.NetworkSettings{Networks: eps},
	}, nil
}

func (f *fakeDocker) Events(_ context.Context, o events.ListOptions,
) (<-chan events.Message, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eventArgs = map[string][]string{}
	for _, k := range o.Filters.Keys() {
		f.eventArgs[k] = o.Filters.Get(k)
		slices.Sort(f.eventArgs[k])
	}
	return f.msgs, f.errs
}

func event(action events.Action, id, net string) events.Message {
	return events.Message{Type: events.NetworkEventType, Action: action,
		Actor: events.Actor{ID: net, Attributes: map[string]string{"container": id}}}
}

// record returns the address dnsmasq would serve for name, "" for none.
func record(t *testing.T, state, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(state, dnsmasq.HostsDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var ip, n string
	if _, err := fmt.Sscan(string(data), &ip, &n); err != nil || n != name {
		t.Fatalf("record %s = %q", name, data)
	}
	return ip
}

func TestSyncCoversEverySegmentsNetwork(t *testing.T) {
	f := newFake()
	f.set("late-a", map[string]string{"hld-net": "10.0.30.100"})
	f.set("late-b", map[string]string{"hld-b-net": "10.0.31.100"})
	f.set("c3", map[string]string{"hld-b-net": "10.0.31.254"})
	f.set("stranger", map[string]string{"bridge": "172.17.0.5"})
	state := t.TempDir()
	s := New(f, testPlan(t), state)
	if got := s.Networks(); !slices.Equal(got, []string{"hld-net", "hld-b-net"}) {
		t.Errorf("Networks() = %v, want [hld-net hld-b-net]", got)
	}

	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"late-a": "10.0.30.100",
		"late-b": "10.0.31.100", "c3": "", "stranger": ""} {
		if got := record(t, state, name); got != want {
			t.Errorf("record %s = %q, want %q", name, got, want)
		}
	}
}

// TestRunFollowsEveryNetwork starts Run and feeds it events of both lab
// networks: records come with connect and go with disconnect, and a
// container on both networks keeps its name through the other one.
func TestRunFollowsEveryNetwork(t *testing.T) {
	f := newFake()
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(f, testPlan(t), state).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	f.set("late-b", map[string]string{"hld-b-net": "10.0.31.100"})
	f.msgs <- event(events.ActionConnect, "late-b", "hld-b-net")
	waitRecord(t, state, "late-b", "10.0.31.100")
	f.mu.Lock()
	args := f.eventArgs
	f.mu.Unlock()
	if !slices.Equal(args["network"], []string{"hld-b-net", "hld-net"}) ||
		!slices.Equal(args["type"], []string{"network"}) {
		t.Errorf("docker events filters %v; want type=network and both lab networks", args)
	}

	f.set("late-b", map[string]string{"hld-b-net": ""})
	f.msgs <- event(events.ActionDisconnect, "late-b", "hld-b-net")
	waitRecord(t, state, "late-b", "")

	f.set("dual", map[string]string{"hld-net": "10.0.30.101", "hld-b-net": "10.0.31.101"})
	f.msgs <- event(events.ActionConnect, "dual", "hld-net")
	waitRecord(t, state, "dual", "10.0.30.101")
	f.set("dual", map[string]string{"hld-b-net": "10.0.31.101"})
	f.msgs <- event(events.ActionDisconnect, "dual", "hld-net")
	waitRecord(t, state, "dual", "10.0.31.101")
	f.set("dual", nil)
	f.msgs <- event(events.ActionDisconnect, "dual", "hld-b-net")
	waitRecord(t, state, "dual", "")
}

func waitRecord(t *testing.T, state, name, want string) {
	t.Helper()
	deadline := time.Now().Add(recordTimeout)
	for got := record(t, state, name); got != want; got = record(t, state, name) {
		if time.Now().After(deadline) {
			t.Fatalf("record %s = %q, want %q within %v", name, got, want, recordTimeout)
		}
		<-time.After(10 * time.Millisecond)
	}
}

// TestSyncerOfAPlanFileFollowsEverySegment reads a plan as the sync
// process does (JSON), and one written before segments existed.
func TestSyncerOfAPlanFileFollowsEverySegment(t *testing.T) {
	p := testPlan(t)
	data, err := json.Marshal(&topology.Plan{Lab: p.Lab, Domain: p.Domain, Docker: p.Docker,
		Nodes: p.Nodes, Segments: p.Segments})
	if err != nil {
		t.Fatal(err)
	}
	var back topology.Plan
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got := New(newFake(), &back, "/state").Networks(); !slices.Equal(got,
		[]string{"hld-net", "hld-b-net"}) {
		t.Errorf("networks from plan file = %v, want [hld-net hld-b-net]", got)
	}
	old := &topology.Plan{Lab: p.Lab, Domain: p.Domain, Docker: p.Docker, Nodes: p.Nodes}
	if got := New(newFake(), old, "/state").Networks(); !slices.Equal(got,
		[]string{"hld-net"}) {
		t.Errorf("networks from a plan without segments = %v, want [hld-net]", got)
	}
}
