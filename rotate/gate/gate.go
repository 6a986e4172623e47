// Package gate owns the gate of step 3: when the old key may be revoked.
// The new key must be in use, the old key quiet for the quiet period (whose
// suggestion from the old key's cadence lives here too), and every source
// seen on the old key moved to the new one or quiet for twice its own
// cadence; all in the server's time. It owns the reading of the execution
// log that decides it: the Feed, one read per poll for every rotation of a
// process, and the calls refused after a revoke.
package gate

import (
	"context"
	"net/http"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/ref"
)

// Config is what a gate is about.
type Config struct {
	Old          ref.Key
	New          *ref.Key  // nil: no successor yet (only the old key's silence is checked)
	NewCreatedAt time.Time // the new key's creation
	// OwnCalls are the new key's calls made by plana's check that it
	// answers: not the automation's.
	OwnCalls []string
	// Future maps a use stamped after the server's present to when plana
	// first saw it; it is the journal's, so it outlives this run.
	Future map[string]time.Time
	Quiet  time.Duration
	// OldQuiet is false in an emergency: the old key is already revoked,
	// so only the new key's use is waited for.
	OldQuiet bool
	// Feed, when set and running, serves the gate's reads.
	Feed *Feed
	// Memory, when set, is what an earlier run's gate learned (Gate.Memory).
	Memory *Memory
	// Interval is the least real time between the two looks that decide
	// the gate: the poll interval (zero: any later look).
	Interval time.Duration
}

// Gate evaluates step 3 repeatedly, reading only what is new in the
// execution log since the previous evaluation.
type Gate struct {
	api   *client.Client
	old   ref.Key
	new   *ref.Key
	since time.Time // the new key's creation
	own   map[string]bool
	// future maps a use stamped after the server's present to when plana
	// first saw it (Config.Future).
	future map[string]time.Time
	quiet  time.Duration
	// requireOldQuiet is false in an emergency: the old key is already revoked.
	requireOldQuiet bool

	oldEntries map[string]client.ExecutionLogEntry
	// ownLast is the latest of plana's own checks on the old key read.
	ownLast  time.Time
	oldFrom  time.Time
	newUsed  bool
	newFirst time.Time
	newFrom  time.Time

	// migration follows each source of the old key to the new one; the
	// first read reaches back over the look-back window for it.
	migration  *migrationTally
	lookedBack bool
	// tallyTo: the old key's calls up to it are in the tally already (an
	// earlier run's Memory); readTo: how far the last read went.
	tallyTo, readTo time.Time
	// feed, when set, serves the gate's reads (see read).
	feed *Feed
	sub  *subscription
	// current makes the next read one that began after it was asked for:
	// the check right before a revoke.
	current bool
	// looks decides on two looks, not one (looks.go).
	looks looks
}

// New is a gate on c's keys, reading through api.
func New(api *client.Client, c Config) *Gate {
	g := &Gate{api: api, old: c.Old, new: c.New, since: c.NewCreatedAt, quiet: c.Quiet,
		requireOldQuiet: c.OldQuiet, own: map[string]bool{}, oldEntries: map[string]client.ExecutionLogEntry{},
		migration: newMigrationTally(), feed: c.Feed, future: c.Future, looks: looks{interval: c.Interval}}
	for _, id := range c.OwnCalls {
		g.own[id] = true
	}
	if g.future == nil {
		g.future = map[string]time.Time{}
	}
	g.remember(c.Memory)
	if g.feed != nil {
		// Subscribed from the start: a fleet's feed waits for every
		// rotation to reach its gate, and this one has.
		if now, ok := api.ServerNow(); ok {
			g.subscribe(now)
		}
	}
	return g
}

// Holds says what the gate holds the rotation to: its quiet period, and
// whether the old key must be quiet at all.
func (g *Gate) Holds() (quiet time.Duration, oldQuiet bool) { return g.quiet, g.requireOldQuiet }

// Current makes the next evaluation read what the log holds from now on,
// not a read that began before: the check right before a revoke.
func (g *Gate) Current() { g.current = true }

// Close ends the gate's subscription to the feed.
func (g *Gate) Close() {
	if g.sub != nil {
		g.sub.Close()
		g.sub = nil
	}
}

// Eval evaluates the gate once, reading what is new since the last time.
func (g *Gate) Eval(ctx context.Context) (Report, error) {
	in, err := g.read(ctx)
	if err != nil {
		return Report{}, err
	}
	// The window ends at the server's present when the read began: a clock
	// stepping forward during the read must not empty it. A stamp is from
	// BOS's future only past the present when the read ended.
	now, end := in.now, in.end
	g.readTo = end
	rep := Report{Now: now, QuietPeriod: duration.JSON(g.quiet), Old: g.old, New: g.new, NewCreatedAt: g.since, OldRevoked: !in.oldKey.Active(),
		LookInterval: duration.JSON(g.looks.interval)}
	if in.oldKey.RevokedAt != nil {
		rep.OldRevokedAt = *in.oldKey.RevokedAt
	}
	windowStart := now.Add(-g.quiet)

	var fresh []client.ExecutionLogEntry // the old key's calls not seen before
	if g.requireOldQuiet && !rep.OldRevoked {
		for _, e := range in.old {
			if _, seen := g.oldEntries[e.ID]; seen {
				continue // the last call read comes again: since is inclusive
			}
			if planaCheck(e) {
				// plana's own look at whether the key answers (its probe
				// when the key was new, from whichever machine) is no use of
				// it: counted, it held the gate a quiet period after every
				// rotation's own probe.
				if e.At.After(g.ownLast) {
					g.ownLast = e.At
				}
				continue
			}
			fresh = append(fresh, e)
			if !e.At.Before(windowStart) {
				g.oldEntries[e.ID] = e
			}
		}
		inWindow := map[string]client.ExecutionLogEntry{}
		for id, e := range g.oldEntries {
			stamp := e.At
			e.At = g.counted(id, stamp, now, end)
			if e.At.Before(windowStart) {
				delete(g.oldEntries, id)
				continue
			}
			if isFuture(stamp, end) && stamp.After(rep.FutureUse) {
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
		// last_used_at inside the window still blocks, erring on the safe
		// side, unless plana's own check is the last call the log shows at
		// or after it: that check set it.
		if lu := in.oldKey.LastUsedAt; lu != nil && g.ownLast.Before(*lu) {
			at := g.counted("last_used_at "+lu.UTC().Format(time.RFC3339Nano), *lu, now, end)
			if !at.Before(windowStart) {
				if at.After(rep.OldLastUse) {
					rep.OldLastUse = at
				}
				if isFuture(*lu, end) && lu.After(rep.FutureUse) {
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
		for _, e := range in.new {
			if !g.theirs(e) {
				continue
			}
			if !g.newUsed || e.At.Before(g.newFirst) {
				g.newFirst = e.At
			}
			g.newUsed = true
		}
		rep.NewUsed, rep.NewFirstUse = g.newUsed, g.newFirst
	}
	migrationHolds := false
	if g.migrating() {
		for _, e := range fresh {
			if e.At.After(g.tallyTo) {
				g.migration.AddOld(e)
			}
		}
		for _, e := range in.new {
			if g.theirs(e) {
				g.migration.AddNew(e)
			}
		}
		rep.Migration = g.migration.Migrations(g.quiet, now)
		migrationHolds, rep.HeldUntil = holding(rep.Migration)
	}
	rep.Holds = rep.NewUsed && rep.OldQuiet && !migrationHolds
	rep.Passed, rep.HeldSince = g.looks.record(rep.Holds, in.confirming, in.ended, now)
	return rep, nil
}

// theirs is a call with the new key made by the automation: not plana's
// own check that it answers (the issuer's may come after this machine
// listed its calls, when the rotation was carried on from another machine),
// and not a call BOS refused.
func (g *Gate) theirs(e client.ExecutionLogEntry) bool {
	return !g.own[e.ID] && !planaCheck(e) && e.Status != http.StatusUnauthorized
}

// migrating says the gate follows each source's move: a planned rotation
// whose successor exists and whose old key still answers.
func (g *Gate) migrating() bool { return g.requireOldQuiet && g.new != nil }

// counted is when a use stamped at counts for the quiet period: its stamp,
// or, when BOS stamped it after its own present when the read ended (end: a
// clock stepped back, a bug), the moment plana first saw it (now). The use
// happened no later than that, so the gate cannot pass early, and even a
// stamp years ahead holds the gate shut for one quiet period only.
func (g *Gate) counted(id string, at, now, end time.Time) time.Time {
	if !isFuture(at, end) {
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
