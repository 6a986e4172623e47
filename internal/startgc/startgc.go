// Package startgc keeps the garbage collector from running while plana's
// packages initialise. Their initialisers (the AWS SDK's service schemas,
// Kubernetes' API types) allocate about 4 MB before main runs, and the
// first cycle's goal is 4 MB × GOGC/100: every command, even plana version,
// paid for a cycle before doing anything. main hands the collector back
// first thing (Restore).
//
// Go initialises a package once all it imports are, the first by import
// path among those ready: this one runs once runtime/debug's imports (fmt,
// os, time) are, by when about 3 MB are allocated (the AWS schemas need no
// more than that), within the first goal.
package startgc

import (
	"runtime"
	"runtime/debug"
)

// percent is the collector's setting before this package turned it off:
// GOGC's, or 100.
var percent = debug.SetGCPercent(-1)

// Restore turns the collector back on. Init left the heap at about the
// first cycle's goal, so with GOGC's setting at once the first allocation
// of any command would start a cycle: until that first cycle, the goal is
// twice GOGC's, then GOGC's own.
func Restore() {
	if percent < 0 {
		debug.SetGCPercent(percent)
		return
	}
	debug.SetGCPercent(2 * percent)
	// A finalizer runs once a cycle found its object unreachable: after
	// the first cycle. The object is big enough not to share a block.
	runtime.SetFinalizer(&[64]byte{}, func(*[64]byte) { debug.SetGCPercent(percent) })
}
