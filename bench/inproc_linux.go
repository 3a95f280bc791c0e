package bench

import (
	"context"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"

	"hybridlab/probes"
)

// InProcess measures with the probes library inside this process. Netns names the network
// namespace (as in `ip netns list`) the client's sockets are created in; "" is the caller's.
type InProcess struct{ Netns string }

// RR runs probes.RunRR with its sockets in c.Netns.
func (c InProcess) RR(ctx context.Context, cfg probes.RRConfig) (probes.RRResult, error) {
	var res probes.RRResult
	err := inNetns(c.Netns, func() error {
		var err error
		res, err = probes.RunRR(ctx, cfg)
		return err
	})
	return res, err
}

// Tput runs probes.RunTput with its socket in c.Netns.
func (c InProcess) Tput(ctx context.Context, cfg probes.TputConfig) (probes.TputResult, error) {
	var res probes.TputResult
	err := inNetns(c.Netns, func() error {
		var err error
		res, err = probes.RunTput(ctx, cfg)
		return err
	})
	return res, err
}

// InProcessStart returns a StartFunc that runs probes.Start in netns name ("" = the caller's)
// with TCP echo, UDP echo and sink on ephemeral ports of ip; the stop function closes them.
func InProcessStart(name, ip string) StartFunc {
	return func(ctx context.Context) (Targets, func() error, error) {
		var s *probes.Server
		err := inNetns(name, func() error {
			var err error
			s, err = probes.Start(probes.ServeConfig{TCP: ip + ":0", UDP: ip + ":0",
				Sink: ip + ":0"})
			return err
		})
		if err != nil {
			return Targets{}, nil, fmt.Errorf("serve in netns %q: %w", name, err)
		}
		a := s.Addrs()
		return Targets{TCP: a.TCP, UDP: a.UDP, Sink: a.Sink}, s.Close, nil
	}
}

// inNetns runs f on a locked OS thread switched into the named netns. Sockets keep the
// namespace they were created in, so listeners and connections opened by f stay there after
// the thread switches back (the `ip netns exec` equivalent for one function call).
func inNetns(name string, f func() error) error {
	if name == "" {
		return f()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open netns %q: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %q: %w", name, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so the runtime discards it instead of reusing a thread
		// left in the wrong namespace.
		return fmt.Errorf("leave netns %q: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
