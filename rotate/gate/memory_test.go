package gate

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

// What a gate learned comes back whole in a later run's gate (through the
// journal's JSON), and the calls it counted are not counted again.
func TestMemoryCarriesTheTallyToTheNextRun(t *testing.T) {
	const q = 48 * time.Hour
	cfg := Config{Old: ref.Key{ID: "key_old"}, New: &ref.Key{ID: "key_new"}, Quiet: q, OldQuiet: true}
	g := New(nil, cfg)
	weekly := calls("10.0.0.9", "report/2", t0, 7*24*time.Hour, 4)
	g.migration.AddOld(weekly...)
	g.migration.AddNew(client.ExecutionLogEntry{SourceIP: "10.0.0.7", UserAgent: "sync/1", At: t0.Add(time.Hour)})
	g.lookedBack, g.readTo = true, t0.Add(22*24*time.Hour)
	g.newUsed, g.newFirst = true, t0.Add(time.Hour)
	data, err := json.Marshal(g.Memory())
	if err != nil {
		t.Fatal(err)
	}
	var m Memory
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	cfg.Memory = &m
	next := New(nil, cfg)
	now := t0.Add(23 * 24 * time.Hour)
	if a, b := g.migration.Migrations(q, now), next.migration.Migrations(q, now); !reflect.DeepEqual(a, b) {
		t.Fatalf("the next run's migration\n%+v\nwant\n%+v", b, a)
	}
	if !next.lookedBack || !next.newUsed || !next.newFirst.Equal(g.newFirst) {
		t.Errorf("the next run's gate forgot the look-back or the new key's first use: %+v", next)
	}
	if n := next.migration.Migrations(q, now)[0].OldCalls; n != len(weekly) || !next.tallyTo.Equal(g.readTo) {
		t.Errorf("%d calls remembered up to %v, want %d up to %v", n, next.tallyTo, len(weekly), g.readTo)
	}
}
