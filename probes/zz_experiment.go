package probes

import (
	"os"
	"runtime"
	"runtime/debug"
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
