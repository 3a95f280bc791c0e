package probes

import (
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// TEMPORARY experiment knobs, removed before hand-off.
var expLock = os.Getenv("HLF_LOCK") == "1"
var expGCOff = os.Getenv("HLF_GCOFF") == "1"
var expPoller = os.Getenv("HLF_POLLER") == "1"

func expBegin() func() {
	if expLock {
		runtime.LockOSThread()
	}
	prev := 0
	if expGCOff {
		prev = debug.SetGCPercent(-1)
	}
	return func() {
		if expGCOff {
			debug.SetGCPercent(prev)
		}
		if expLock {
			runtime.UnlockOSThread()
		}
	}
}

var expYield = func() time.Duration {
	n := 0
	for _, c := range os.Getenv("HLF_YIELDUS") {
		n = n*10 + int(c-'0')
	}
	return time.Duration(n) * time.Microsecond
}()

type expYielder struct {
	n    uint
	last time.Time
}

func (y *expYielder) tick() {
	if expYield == 0 {
		return
	}
	y.n++
	if y.n&15 != 0 {
		return
	}
	now := time.Now()
	if now.Sub(y.last) >= expYield {
		y.last = now
		runtime.Gosched()
	}
}
