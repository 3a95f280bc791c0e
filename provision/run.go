package provision

import (
	"context"
	"fmt"
	"io"
	"time"

	"hybridlab/topology"
)

// Options shape `up` and `down`.
type Options struct {
	// VMs brings up the lab's VMs too; false builds only the network half
	// (bridge, guard, DNS/DHCP, containers).
	VMs bool
	// AllowEgress lets lab traffic leave through the uplink. Off by default:
	// the guard drops lab-subnet traffic on every interface but the lab's.
	AllowEgress bool
	// Accel forces "kvm" or "tcg"; "" or "auto" runs the boot probe.
	Accel string
	// Install lets `up` install missing Debian packages with apt-get.
	Install bool
	// StopDaemons makes `down` stop the daemons that `up` started.
	StopDaemons bool
	// LabFile is recorded so `status` and `down` can name the source.
	LabFile string
	// Progress receives a line per milestone; Output receives the streamed
	// output of long steps (apt-get, mmdebstrap, vagrant). Either may be nil.
	Progress func(Event)
	Output   io.Writer
}

// Event is one progress line.
type Event struct {
	Step    string
	Message string
	// Elapsed is set when the step has finished.
	Elapsed time.Duration
}

func (o *Options) progress(step, format string, args ...any) {
	if o.Progress != nil {
		o.Progress(Event{Step: step, Message: fmt.Sprintf(format, args...)})
	}
}

func (o *Options) output() io.Writer {
	if o.Output == nil {
		return io.Discard
	}
	return o.Output
}

// step is one named stage of `up` or `down`.
type step struct {
	name string
	run  func(ctx context.Context) error
}

// runSteps runs steps in order, timing each, saving the record after each
// so an interrupted run leaves an accurate record behind.
func runSteps(ctx context.Context, rec *Record, opts *Options, steps []step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		err := s.run(ctx)
		elapsed := time.Since(start)
		rec.Timings = append(rec.Timings, StepTiming{Step: s.name, Seconds: elapsed.Seconds()})
		if serr := rec.Save(); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if opts.Progress != nil {
			opts.Progress(Event{Step: s.name, Message: "done", Elapsed: elapsed})
		}
	}
	return nil
}

// Nodes of the plan a step acts on, in plan order.
func vmNodes(p *topology.Plan, opts Options) []topology.Node {
	if !opts.VMs {
		return nil
	}
	return p.VMs()
}
