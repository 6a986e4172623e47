package gate

import (
	"net/http"
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

// plana's probe of a key is no place the key is used from, in any tally.
func TestTallyLeavesOutPlanasProbe(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	probe := client.ExecutionLogEntry{ID: "1", At: at, Method: http.MethodGet, Path: "/v1/me", SourceIP: "10.0.0.9", UserAgent: "plana/1.4.0 (linux; laptop-7)", Status: 200}
	sameUAWrite := probe
	sameUAWrite.ID, sameUAWrite.Method, sameUAWrite.Path = "2", http.MethodPost, "/v1/stock-levels"
	job := client.ExecutionLogEntry{ID: "3", At: at, Method: http.MethodGet, Path: "/v1/me", SourceIP: "10.0.0.1", UserAgent: "stock-sync/1.4", Status: 200}
	tl := NewTally()
	tl.Add(probe, sameUAWrite, job)
	if tl.Total != 2 || len(tl.Sources()) != 2 {
		t.Fatalf("want the write and the job's own /v1/me counted, the probe not: %+v", tl.Sources())
	}
	m := newMigrationTally()
	m.AddOld(probe, job)
	if ms := m.Migrations(time.Hour, at); len(ms) != 1 || ms[0].UserAgent != "stock-sync/1.4" {
		t.Fatalf("want only the job as a source that has to move: %+v", ms)
	}
}
