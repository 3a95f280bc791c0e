package probes

import (
	"runtime"
	"time"
)

// yieldEvery is how often a goroutine that lives in blocking system calls passes through the
// scheduler. Such a goroutine never reschedules on its own, so after 10ms the runtime's
// monitor (sysmon) preempts it and takes its P away; the monitor then polls every 20µs for a
// while, and those wake-ups push the echo ping-pong onto idle CPUs, which on a virtual
// machine shows as 40–60µs tails in about 1% of requests. A voluntary yield well inside the
// 10ms keeps the monitor asleep.
const yieldEvery = 5 * time.Millisecond

// yielder calls runtime.Gosched at most once per yieldEvery.
type yielder struct{ last time.Time }

// at yields if yieldEvery has passed since the last yield; now is the caller's clock reading.
func (y *yielder) at(now time.Time) {
	if now.Sub(y.last) < yieldEvery {
		return
	}
	y.last = now
	runtime.Gosched()
}

// counted yields like at, reading the clock only every 8th call (n counts calls).
func (y *yielder) counted(n *uint) {
	*n++
	if *n&7 == 0 {
		y.at(time.Now())
	}
}
