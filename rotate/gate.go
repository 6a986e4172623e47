package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// gate evaluates step 3 repeatedly, reading only what is new in the
// execution log since the previous evaluation.
type gate struct {
	api   *client.Client
	old   KeyRef
	new   *KeyRef
	since time.Time // the new key's creation
	own   map[string]bool
	// future maps a use stamped after the server's present to when plana
	// first saw it; it is the journal's, so it outlives this run.
	future map[string]time.Time
	quiet  time.Duration
	// requireOldQuiet is false in an emergency: the old key is already revoked.
	requireOldQuiet bool

	oldEntries map[string]client.ExecutionLogEntry
	oldFrom    time.Time
	newUsed    bool
	newFirst   time.Time
	newFrom    time.Time
}

func newGate(api *client.Client, j *Journal, quiet time.Duration, requireOldQuiet bool) *gate {
	g := &gate{api: api, old: j.Old, new: j.New, since: j.NewCreatedAt, quiet: quiet,
		requireOldQuiet: requireOldQuiet, own: map[string]bool{}, oldEntries: map[string]client.ExecutionLogEntry{}}
	for _, id := range j.OwnCalls {
		g.own[id] = true
	}
	if j.FutureUses == nil {
		j.FutureUses = map[string]time.Time{}
	}
	g.future = j.FutureUses
	return g
}

const logPageSize = 1000

func (g *gate) eval(ctx context.Context) (GateReport, error) {
	oldKey, err := g.api.GetKey(ctx, g.old.ID)
	if err != nil {
		return GateReport{}, fmt.Errorf("reading the old key: %w", err)
	}
	now, ok := g.api.ServerNow()
	if !ok {
		return GateReport{}, errors.New("the server sent no Date header: the gate needs the server's time, and will not trust the local clock")
	}
	rep := GateReport{Now: now, QuietPeriod: duration.JSON(g.quiet), Old: g.old, New: g.new, NewCreatedAt: g.since, OldRevoked: !oldKey.Active()}
	windowStart := now.Add(-g.quiet)

	if g.requireOldQuiet && !rep.OldRevoked {
		from := g.oldFrom
		if from.Before(windowStart) {
			from = windowStart
		}
		err := g.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: g.old.ID, Since: from, PageSize: logPageSize},
			func(es []client.ExecutionLogEntry) error {
				for _, e := range es {
					g.oldEntries[e.ID] = e
					// A future stamp must not move the next read past the
					// calls made meanwhile.
					if e.At.After(g.oldFrom) && !e.At.After(now) {
						g.oldFrom = e.At
					}
				}
				return nil
			})
		if err != nil {
			return rep, fmt.Errorf("reading the old key's execution log: %w", err)
		}
		// The log was read after now was taken: a call made meanwhile is
		// not from BOS's future. The log's own answer dates the read.
		if n, ok := g.api.ServerNow(); ok && n.After(now) {
			now, rep.Now = n, n
		}
		inWindow := map[string]client.ExecutionLogEntry{}
		for id, e := range g.oldEntries {
			stamp := e.At
			e.At = g.counted(id, stamp, now)
			if e.At.Before(windowStart) {
				delete(g.oldEntries, id)
				continue
			}
			if isFuture(stamp, now) && stamp.After(rep.FutureUse) {
				rep.FutureUse = stamp
			}
			inWindow[id] = e
		}
		tally := NewTally()
		for _, e := range inWindow {
			tally.Add(e)
		}
		rep.Sources = tally.Sources()
		for _, s := range rep.Sources {
			if s.LastSeen.After(rep.OldLastUse) {
				rep.OldLastUse = s.LastSeen
			}
		}
		// last_used_at may be recorded coarsely, so the log decides; but a
		// last_used_at inside the window still blocks, erring on the safe side.
		if lu := oldKey.LastUsedAt; lu != nil {
			at := g.counted("last_used_at "+lu.UTC().Format(time.RFC3339Nano), *lu, now)
			if !at.Before(windowStart) {
				if at.After(rep.OldLastUse) {
					rep.OldLastUse = at
				}
				if isFuture(*lu, now) && lu.After(rep.FutureUse) {
					rep.FutureUse = *lu
				}
			}
		}
		rep.OldQuiet = rep.OldLastUse.IsZero()
		if !rep.OldQuiet {
			rep.QuietUntil = rep.OldLastUse.Add(g.quiet)
		}
	} else {
		rep.OldQuiet = true
	}

	if g.new == nil {
		rep.NewUsed = true
	} else {
		if !g.newUsed {
			if err := g.readNew(ctx); err != nil {
				return rep, err
			}
		}
		rep.NewUsed, rep.NewFirstUse = g.newUsed, g.newFirst
	}
	rep.Passed = rep.NewUsed && rep.OldQuiet
	return rep, nil
}

// counted is when a use stamped at counts for the quiet period: its stamp,
// or, when BOS stamped it after its own present (a clock stepped back, a
// bug), the moment plana first saw it. The use happened no later than that,
// so the gate cannot pass early, and even a stamp years ahead holds the gate
// shut for one quiet period only.
func (g *gate) counted(id string, at, now time.Time) time.Time {
	if !isFuture(at, now) {
		return at
	}
	seen, ok := g.future[id]
	if !ok {
		seen = now
		g.future[id] = now
	}
	return seen
}

// dateResolution is how far the server's present, read from a Date header
// in whole seconds, can lag behind a stamp it wrote in the same second.
const dateResolution = time.Second

// isFuture says BOS stamped at after its own present: more than the Date
// header's resolution ahead of now.
func isFuture(at, now time.Time) bool { return at.After(now.Add(dateResolution)) }

// readNew looks for a call made with the new key by anyone but plana's own
// check that it answers.
func (g *gate) readNew(ctx context.Context) error {
	from := g.newFrom
	if from.IsZero() {
		from = g.since
	}
	err := g.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: g.new.ID, Since: from, PageSize: logPageSize},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				if e.At.After(g.newFrom) {
					g.newFrom = e.At
				}
				if g.own[e.ID] {
					continue
				}
				if !g.newUsed || e.At.Before(g.newFirst) {
					g.newFirst = e.At
				}
				g.newUsed = true
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("reading the new key's execution log: %w", err)
	}
	return nil
}
