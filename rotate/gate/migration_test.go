package gate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// Migrations is a tally of the old key's calls old and the new key's new.
func Migrations(old, new []client.ExecutionLogEntry, quiet time.Duration, now time.Time) []Migration {
	t := newMigrationTally()
	t.AddOld(old...)
	t.AddNew(new...)
	return t.Migrations(quiet, now)
}

func calls(ip, ua string, from time.Time, every time.Duration, n int) []client.ExecutionLogEntry {
	var out []client.ExecutionLogEntry
	for i := range n {
		out = append(out, client.ExecutionLogEntry{ID: fmt.Sprintf("%s-%s-%d-%d", ip, ua, from.Unix(), i), At: from.Add(time.Duration(i) * every), SourceIP: ip, UserAgent: ua})
	}
	return out
}

func TestAWeeklyJobHoldsA48hQuietPeriodForTwoOfItsWeeks(t *testing.T) {
	const day = 24 * time.Hour
	weekly := calls("10.0.0.9", "report/2", t0, 7*day, 4) // last call t0+21d
	hourly := calls("10.0.0.1", "stock-sync/1.4", t0, time.Hour, 24*24)
	last := t0.Add(21 * day)
	// The hourly job moved to the new key; the weekly one has not run since.
	newCalls := calls("10.0.0.1", "stock-sync/1.4", last.Add(time.Hour), time.Hour, 3)
	old := append(weekly, hourly...)

	now := last.Add(3 * day) // past 48h, inside two weeks
	ms := Migrations(old, newCalls, 48*time.Hour, now)
	if len(ms) != 2 {
		t.Fatalf("%d sources, want 2: %+v", len(ms), ms)
	}
	w, h := ms[0], ms[1]
	if w.UserAgent != "report/2" || !w.Holding || w.Moved {
		t.Fatalf("the weekly job, not on the new key, must hold the gate and come first: %+v", w)
	}
	if time.Duration(w.Cadence) != 7*day || time.Duration(w.QuietTime) != 14*day || !w.HoldUntil.Equal(last.Add(14*day)) || w.OldCalls != 4 || !w.OldLast.Equal(last) {
		t.Errorf("weekly job: cadence %s, quiet time %s, hold until %s", time.Duration(w.Cadence), time.Duration(w.QuietTime), w.HoldUntil)
	}
	if h.Holding || !h.Moved || !h.NewFirst.Equal(last.Add(time.Hour)) || time.Duration(h.Cadence) != time.Hour || time.Duration(h.QuietTime) != 48*time.Hour {
		t.Errorf("hourly job that moved: %+v", h)
	}
	holds, until := holding(ms)
	if !holds || !until.Equal(last.Add(14*day)) {
		t.Errorf("MigrationHolds = %v, %s", holds, until)
	}
	line := w.String()
	for _, want := range []string{"10.0.0.9", `"report/2"`, "at 2026-11-22T00:00:00Z", "4 calls", "every 7d", "holds the gate until 2026-12-06T00:00:00Z"} {
		if !strings.Contains(line, want) {
			t.Errorf("wait line %q lacks %q", line, want)
		}
	}
	if s := h.String(); !strings.Contains(s, "on the new key since") {
		t.Errorf("moved source line: %q", s)
	}

	// Two weeks after its last old call, it no longer holds.
	ms = Migrations(old, newCalls, 48*time.Hour, last.Add(14*day))
	if holds, _ := holding(ms); holds {
		t.Errorf("the weekly job still holds after twice its cadence: %+v", ms)
	}
	if s := ms[1].String(); !strings.Contains(s, "no longer holds") {
		t.Errorf("released source line: %q", s)
	}
}

func TestASourceSeenOnceHoldsForTheQuietPeriod(t *testing.T) {
	old := calls("10.0.0.5", "curl/8", t0, 0, 1)
	ms := Migrations(old, nil, 24*time.Hour, t0.Add(23*time.Hour))
	if len(ms) != 1 || ms[0].Cadence != 0 || time.Duration(ms[0].QuietTime) != 24*time.Hour || !ms[0].Holding {
		t.Fatalf("%+v", ms)
	}
	if ms := Migrations(old, nil, 24*time.Hour, t0.Add(24*time.Hour)); ms[0].Holding {
		t.Errorf("still holding once the quiet period has passed: %+v", ms)
	}
}

func TestCadenceIsTheMedianGapNotTheLargest(t *testing.T) {
	// An hourly job that missed two runs once.
	var old []client.ExecutionLogEntry
	for i := range 10 {
		if i == 4 || i == 5 {
			continue
		}
		old = append(old, client.ExecutionLogEntry{ID: fmt.Sprint(i), At: t0.Add(time.Duration(i) * time.Hour), SourceIP: "a", UserAgent: "b"})
	}
	ms := Migrations(old, nil, time.Hour, t0)
	if time.Duration(ms[0].Cadence) != time.Hour {
		t.Errorf("cadence %s, want 1h", time.Duration(ms[0].Cadence))
	}
	if medianGap([]time.Time{t0, t0.Add(time.Hour), t0.Add(4 * time.Hour)}) != 2*time.Hour {
		t.Error("the median of an even number of gaps is their mean")
	}
}

func TestASourceThatChangesItsUserAgentHasNotMoved(t *testing.T) {
	old := calls("10.0.0.1", "stock-sync/1.4", t0, time.Hour, 5)
	newCalls := calls("10.0.0.1", "stock-sync/1.5", t0.Add(5*time.Hour), time.Hour, 2)
	ms := Migrations(old, newCalls, time.Hour, t0.Add(5*time.Hour))
	if len(ms) != 1 || ms[0].Moved || !ms[0].Holding {
		t.Errorf("%+v", ms)
	}
	if holds, _ := holding(nil); holds {
		t.Error("no source holds nothing")
	}
}

func TestTheTallyKeepsFlatMemoryAndTheLatestCadence(t *testing.T) {
	tl := newMigrationTally()
	// A month hourly, then a day every minute: the cadence is read from the
	// latest calls, whatever order the log comes in.
	hourly := calls("a", "b", t0, time.Hour, 30*24)
	fast := calls("a", "b", t0.Add(30*24*time.Hour), time.Minute, 24*60)
	for i := len(fast) - 1; i >= 0; i-- { // newest first, as the log pages
		tl.AddOld(fast[i])
	}
	tl.AddOld(hourly...)
	if n := len(tl.old[sourceID{"a", "b"}].recent); n != recentCalls {
		t.Fatalf("kept %d calls, want %d", n, recentCalls)
	}
	ms := tl.Migrations(time.Hour, fast[len(fast)-1].At)
	if len(ms) != 1 || time.Duration(ms[0].Cadence) != time.Minute || ms[0].OldCalls != len(hourly)+len(fast) || !ms[0].OldLast.Equal(fast[len(fast)-1].At) {
		t.Errorf("%+v", ms)
	}
}
