package gate

import (
	"slices"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

func TestTallyOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	e := func(id, ua string, at time.Time) client.ExecutionLogEntry {
		return client.ExecutionLogEntry{ID: id, SourceIP: "10.0.0.1", UserAgent: ua, Path: "/v1/stock-levels", At: at}
	}
	tl := NewTally()
	tl.Add(e("1", "worker/2.0", t0), e("2", "worker/2.0", t0.Add(time.Minute)))
	tl.Add(e("3", "late-cron/1", t0.Add(time.Hour)), e("4", "early-cron/1", t0))
	got := tl.Sources()
	var uas []string
	for _, s := range got {
		uas = append(uas, s.UserAgent)
	}
	// Busiest first, then the most recently seen.
	if want := []string{"worker/2.0", "late-cron/1", "early-cron/1"}; !slices.Equal(uas, want) {
		t.Errorf("sources in order %v, want %v", uas, want)
	}
	if tl.Total != 4 || got[0].Calls != 2 || !got[0].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("tally %d, first %+v", tl.Total, got[0])
	}
}
