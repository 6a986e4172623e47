package gate

import (
	"net/http"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

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
