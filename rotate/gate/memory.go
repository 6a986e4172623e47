package gate

import (
	"time"
)

// Memory is what a gate learned that a later run would otherwise read
// again: each source's calls on the old key over the look-back (its
// cadence) and its first call on the new key, and the new key's first use.
// A rotation keeps it in its journal, so that a run carrying it on reads
// only the quiet window and what is new, in the read it shares with every
// other rotation, not each key's thirty days again.
type Memory struct {
	// To is the server's time up to which both keys' calls are in it.
	To       time.Time      `json:"to"`
	NewFirst time.Time      `json:"new_first_use,omitzero"`
	Sources  []SourceMemory `json:"sources,omitempty"`
}

// SourceMemory is one source of the old key as a gate's tally holds it.
type SourceMemory struct {
	SourceIP  string      `json:"source_ip"`
	UserAgent string      `json:"user_agent"`
	OldCalls  int         `json:"old_calls"`
	OldRecent []time.Time `json:"old_recent"` // its latest calls, at most recentCalls
	NewFirst  time.Time   `json:"new_first,omitzero"`
}

// Memory is what g learned so far (nil before its first read).
func (g *Gate) Memory() *Memory {
	if g.readTo.IsZero() || !g.lookedBack {
		return nil
	}
	m := &Memory{To: g.readTo}
	if g.newUsed {
		m.NewFirst = g.newFirst
	}
	ids := map[sourceID]bool{}
	for id := range g.migration.old {
		ids[id] = true
	}
	for id := range g.migration.first {
		ids[id] = true
	}
	for id := range ids {
		sm := SourceMemory{SourceIP: id.ip, UserAgent: id.ua, NewFirst: g.migration.first[id]}
		if o := g.migration.old[id]; o != nil {
			sm.OldCalls, sm.OldRecent = o.calls, o.recent
		}
		m.Sources = append(m.Sources, sm)
	}
	return m
}

// remember takes m up: the look-back is done, and the calls up to m.To are
// counted.
func (g *Gate) remember(m *Memory) {
	if m == nil || m.To.IsZero() {
		return
	}
	g.lookedBack, g.tallyTo = true, m.To
	// Calls of the new key from a little before To on come again: firsts
	// are minimums, so they count once.
	g.newFrom = m.To.Add(-feedOverlap)
	if !m.NewFirst.IsZero() {
		g.newUsed, g.newFirst = true, m.NewFirst
	}
	for _, s := range m.Sources {
		id := sourceID{s.SourceIP, s.UserAgent}
		if s.OldCalls > 0 {
			g.migration.old[id] = &oldSource{calls: s.OldCalls, recent: s.OldRecent}
		}
		if !s.NewFirst.IsZero() {
			g.migration.first[id] = s.NewFirst
		}
	}
}
