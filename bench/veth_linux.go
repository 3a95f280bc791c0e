package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"hybridlab/probes/remote"
)

// Veth is the floor fixture: two network namespaces joined by a veth pair, nothing else on
// the path (no bridge, no netfilter rules inside the namespaces).
type Veth struct {
	NetnsA, NetnsB string       // client and server namespaces
	LinkA, LinkB   string       // the pair's ends, one in each namespace
	AddrA, AddrB   netip.Prefix // addresses of LinkA and LinkB
	MTU            int          // 0 keeps the kernel default (1500)
}

// DefaultVeth is hlb-a (10.99.0.1/24) ↔ hlb-b (10.99.0.2/24).
func DefaultVeth() Veth {
	return Veth{NetnsA: "hlb-a", NetnsB: "hlb-b", LinkA: "hlb-va", LinkB: "hlb-vb",
		AddrA: netip.MustParsePrefix("10.99.0.1/24"),
		AddrB: netip.MustParsePrefix("10.99.0.2/24")}
}

// Up creates both namespaces and the pair (`ip netns add`, `ip link add LINKA netns A type
// veth peer name LINKB netns B`, `ip addr add`, `ip link set up`, lo up in both). Leftover
// namespaces of the same names are removed first, so Up is idempotent; call Down to remove
// everything. Needs root.
func (v Veth) Up(ctx context.Context) error {
	if err := v.Down(ctx); err != nil {
		return err
	}
	host := HostNode{}
	steps := [][]string{
		{"ip", "netns", "add", v.NetnsA},
		{"ip", "netns", "add", v.NetnsB},
		{"ip", "link", "add", v.LinkA, "netns", v.NetnsA, "type", "veth", "peer", "name",
			v.LinkB, "netns", v.NetnsB},
	}
	for _, end := range []struct {
		ns, link string
		addr     netip.Prefix
	}{{v.NetnsA, v.LinkA, v.AddrA}, {v.NetnsB, v.LinkB, v.AddrB}} {
		steps = append(steps, []string{"ip", "-n", end.ns, "addr", "add", end.addr.String(),
			"dev", end.link})
		if v.MTU > 0 {
			steps = append(steps, []string{"ip", "-n", end.ns, "link", "set", end.link, "mtu",
				strconv.Itoa(v.MTU)})
		}
		steps = append(steps, []string{"ip", "-n", end.ns, "link", "set", end.link, "up"},
			[]string{"ip", "-n", end.ns, "link", "set", "lo", "up"})
	}
	for _, argv := range steps {
		if _, err := host.Exec(ctx, argv...); err != nil {
			return errors.Join(fmt.Errorf("create veth floor %s↔%s: %w", v.NetnsA, v.NetnsB,
				err), v.Down(ctx))
		}
	}
	return nil
}

// Down deletes both namespaces (`ip netns del`), which removes the veth pair; a namespace
// that does not exist counts as removed.
func (v Veth) Down(ctx context.Context) error {
	var errs []error
	for _, ns := range []string{v.NetnsA, v.NetnsB} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if _, err := (HostNode{}).Exec(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("delete netns %q: %w", ns, err))
		}
	}
	return errors.Join(errs...)
}

// PathOptions choose how a lab-independent path is measured.
type PathOptions struct {
	// ProbeBinary, when set, runs that agent binary (`probe serve`, `probe rr`) as separate
	// processes, like the lab paths do; otherwise the probes library runs in this process.
	ProbeBinary string
	// Tools attaches sockperf and iperf3 ends for the fidelity check.
	Tools bool
}

// VethPath is the floor path "veth": client in v.NetnsA, server in v.NetnsB. v must be Up.
func VethPath(v Veth, opt PathOptions) Path {
	ip := v.AddrB.Addr().String()
	p := Path{
		Name: DefaultFloor,
		Description: fmt.Sprintf("netns %s → veth pair → netns %s (%s); the floor", v.NetnsA,
			v.NetnsB, ip),
		Interfaces: []Interface{{Netns: v.NetnsA, Name: v.LinkA},
			{Netns: v.NetnsB, Name: v.LinkB}},
	}
	if opt.ProbeBinary != "" {
		p.Start = runnerStart(remote.Netns{Name: v.NetnsB, Path: opt.ProbeBinary}, ip)
		p.Client = RunnerClient{R: remote.Netns{Name: v.NetnsA, Path: opt.ProbeBinary}}
	} else {
		p.Start = InProcessStart(v.NetnsB, ip)
		p.Client = InProcess{Netns: v.NetnsA}
	}
	if opt.Tools {
		p.Tools = &ToolEnds{Server: HostNode{Netns: v.NetnsB}, Client: HostNode{Netns: v.NetnsA},
			Addr: ip}
	}
	return p
}

// LoopbackPath is the path "loopback": client and server on 127.0.0.1 of the caller's netns.
func LoopbackPath(opt PathOptions) Path {
	const ip = "127.0.0.1"
	p := Path{
		Name:        "loopback",
		Description: "127.0.0.1 → lo → 127.0.0.1 in the host's netns",
		Interfaces:  []Interface{{Name: "lo"}},
	}
	if opt.ProbeBinary != "" {
		p.Start = runnerStart(remote.Local{Path: opt.ProbeBinary}, ip)
		p.Client = RunnerClient{R: remote.Local{Path: opt.ProbeBinary}}
	} else {
		p.Start = InProcessStart("", ip)
		p.Client = InProcess{}
	}
	if opt.Tools {
		p.Tools = &ToolEnds{Server: HostNode{}, Client: HostNode{}, Addr: ip}
	}
	return p
}
