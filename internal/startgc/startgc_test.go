package startgc

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// The collector is off from this package's initialisation until Restore,
// at twice its setting until the first cycle, then at its setting.
func TestRestoreGivesTheCollectorItsSettingBack(t *testing.T) {
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("before Restore the collector is at %d%%, want off", got)
	}
	Restore()
	if got := debug.SetGCPercent(2 * percent); got != 2*percent || percent <= 0 {
		t.Fatalf("after Restore the collector is at %d%%, want %d%% until the first cycle", got, 2*percent)
	}
	runtime.GC()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := debug.SetGCPercent(2 * percent)
		if got == percent {
			debug.SetGCPercent(percent)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first cycle the collector is at %d%%, want %d%% (GOGC's)", got, percent)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
