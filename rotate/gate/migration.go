package gate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// Migration is how far one caller of the old key (a source IP and user
// agent) has moved to the new key.
type Migration struct {
	SourceIP  string `json:"source_ip"`
	UserAgent string `json:"user_agent"`
	// OldCalls and OldLast are its calls on the old key in the look-back
	// window, and the last of them.
	OldCalls int       `json:"old_calls"`
	OldLast  time.Time `json:"old_last"`
	// NewFirst is its first call on the new key; zero while it has made none.
	NewFirst time.Time `json:"new_first,omitzero"`
	// Cadence is the median gap between its calls on the old key: its own
	// rhythm. Zero when it was seen once.
	Cadence duration.JSON `json:"cadence,omitempty"`
	// QuietTime is how long it must stay off the old key before its silence
	// means anything: twice its cadence, at least the quiet period.
	QuietTime duration.JSON `json:"quiet_time"`
	// HoldUntil is OldLast + QuietTime: until then a source that has not
	// reached the new key holds the gate.
	HoldUntil time.Time `json:"hold_until"`
	Moved     bool      `json:"moved"`
	Holding   bool      `json:"holding"`
}

// Look-back of the per-source migration: how much of the old key's history
// its first evaluation reads to learn each source's cadence.
const (
	Lookback        = 30 * 24 * time.Hour
	lookbackEntries = 5 * pageSize // the newest calls, when there are more
)

type sourceID struct{ ip, ua string }

// recentCalls is how many of a source's latest calls its cadence is read
// from: enough for a median, and memory stays flat however busy it is.
const recentCalls = 64

// oldSource is what a migrationTally keeps of one source on the old key.
type oldSource struct {
	calls  int
	recent []time.Time // its latest calls, at most recentCalls, unordered
}

// migrationTally gathers, entry by entry as the log is read, what
// Migrations needs: the old key's calls by source, the new key's first call
// by source.
type migrationTally struct {
	old   map[sourceID]*oldSource
	first map[sourceID]time.Time
}

// newMigrationTally starts an empty tally.
func newMigrationTally() *migrationTally {
	return &migrationTally{old: map[sourceID]*oldSource{}, first: map[sourceID]time.Time{}}
}

// AddOld counts calls made with the old key, plana's own checks left out:
// plana's probe of the key when it was new is no source that has to move.
func (t *migrationTally) AddOld(entries ...client.ExecutionLogEntry) {
	for _, e := range entries {
		if planaCheck(e) {
			continue
		}
		id := sourceID{e.SourceIP, e.UserAgent}
		s := t.old[id]
		if s == nil {
			s = &oldSource{}
			t.old[id] = s
		}
		s.calls++
		if len(s.recent) < recentCalls {
			s.recent = append(s.recent, e.At)
			continue
		}
		// Replace the earliest kept call when this one is later: the log
		// may come newest first or oldest first.
		i := 0
		for j, at := range s.recent {
			if at.Before(s.recent[i]) {
				i = j
			}
		}
		if e.At.After(s.recent[i]) {
			s.recent[i] = e.At
		}
	}
}

// AddNew counts calls made with the new key (plana's own left out).
func (t *migrationTally) AddNew(entries ...client.ExecutionLogEntry) {
	for _, e := range entries {
		id := sourceID{e.SourceIP, e.UserAgent}
		if f, ok := t.first[id]; !ok || e.At.Before(f) {
			t.first[id] = e.At
		}
	}
}

// Migrations sums the tally up, source by source, at the server time now.
// A source seen on the old key and not on the new holds the gate until its
// own quiet time has passed: max(2 × its cadence, quiet), so a weekly job
// keeps the gate shut for two weeks after its last old call, where a 48 h
// quiet period alone would pass between two of its runs. A source that
// changes its user agent when it moves counts as one that has not moved,
// and holds until its quiet time: the gate errs on the safe side. Sources
// are ordered holding first, then by last call on the old key, newest
// first.
func (t *migrationTally) Migrations(quiet time.Duration, now time.Time) []Migration {
	out := make([]Migration, 0, len(t.old))
	for id, s := range t.old {
		ts := slices.Clone(s.recent)
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		m := Migration{SourceIP: id.ip, UserAgent: id.ua, OldCalls: s.calls, OldLast: ts[len(ts)-1], Cadence: duration.JSON(medianGap(ts))}
		m.NewFirst, m.Moved = t.first[id]
		m.QuietTime = duration.JSON(max(2*time.Duration(m.Cadence), quiet))
		m.HoldUntil = m.OldLast.Add(time.Duration(m.QuietTime))
		m.Holding = !m.Moved && now.Before(m.HoldUntil)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Holding != out[j].Holding {
			return out[i].Holding
		}
		if !out[i].OldLast.Equal(out[j].OldLast) {
			return out[i].OldLast.After(out[j].OldLast)
		}
		if out[i].SourceIP != out[j].SourceIP {
			return out[i].SourceIP < out[j].SourceIP
		}
		return out[i].UserAgent < out[j].UserAgent
	})
	return out
}

// medianGap is the median of the gaps between consecutive times of ts,
// sorted; zero with fewer than two. The median, not the largest gap: one
// missed run must not double a source's cadence.
func medianGap(ts []time.Time) time.Duration {
	if len(ts) < 2 {
		return 0
	}
	gaps := make([]time.Duration, 0, len(ts)-1)
	for i := 1; i < len(ts); i++ {
		gaps = append(gaps, ts[i].Sub(ts[i-1]))
	}
	slices.Sort(gaps)
	n := len(gaps)
	if n%2 == 1 {
		return gaps[n/2]
	}
	return (gaps[n/2-1] + gaps[n/2]) / 2
}

// holding reports whether any source still holds the gate, and until
// when the last of them does if none calls the old key again.
func holding(ms []Migration) (bool, time.Time) {
	var until time.Time
	holding := false
	for _, m := range ms {
		if m.Holding {
			holding = true
			if m.HoldUntil.After(until) {
				until = m.HoldUntil
			}
		}
	}
	return holding, until
}

// String is the source's part of the wait lines.
func (m Migration) String() string {
	var b strings.Builder
	// Times, not ages: a wait line is shown again only when it changes.
	fmt.Fprintf(&b, "%s %q: last on the old key at %s (%d calls", m.SourceIP, m.UserAgent, m.OldLast.UTC().Format(time.RFC3339), m.OldCalls)
	if m.Cadence > 0 {
		fmt.Fprintf(&b, ", every %s", duration.Approx(time.Duration(m.Cadence)))
	}
	b.WriteString("), ")
	switch {
	case m.Moved:
		fmt.Fprintf(&b, "on the new key since %s", m.NewFirst.UTC().Format(time.RFC3339))
	case m.Holding:
		fmt.Fprintf(&b, "not on the new key yet: holds the gate until %s", m.HoldUntil.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(&b, "not on the new key, quiet for %s: no longer holds the gate", duration.Approx(time.Duration(m.QuietTime)))
	}
	return b.String()
}

// ReadMigration reads how far each source of the old key has moved to the
// new one, at the server time now: the old key's calls over the look-back
// window (the newest, when there are very many) and the new key's since it
// was created, plana's own checks (GET /v1/me) left out. quiet 0: the
// default quiet period.
func ReadMigration(ctx context.Context, api *client.Client, oldID, newID string, newCreatedAt time.Time, quiet time.Duration, now time.Time) ([]Migration, error) {
	if quiet <= 0 {
		quiet = defaultQuiet
	}
	t := newMigrationTally()
	err := api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: oldID, Since: now.Add(-Lookback), PageSize: pageSize, Limit: lookbackEntries},
		func(es []client.ExecutionLogEntry) error {
			t.AddOld(es...)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("reading the old key's execution log: %w", err)
	}
	err = api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: newID, Since: newCreatedAt, PageSize: pageSize},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				if e.Path != "/v1/me" {
					t.AddNew(e)
				}
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("reading the new key's execution log: %w", err)
	}
	return t.Migrations(quiet, now), nil
}
