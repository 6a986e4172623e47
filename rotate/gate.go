package rotate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

	// migration follows each source of the old key to the new one; the
	// first read reaches back over the look-back window for it.
	migration  *MigrationTally
	lookedBack bool
	// feed, when set, serves the gate's reads (see read).
	feed *LogFeed
	sub  *Subscription
	// current makes the next read one that began after it was asked for:
	// the check right before a revoke.
	current bool
}

func newGate(api *client.Client, j *Journal, quiet time.Duration, requireOldQuiet bool) *gate {
	g := &gate{api: api, old: j.Old, new: j.New, since: j.NewCreatedAt, quiet: quiet,
		requireOldQuiet: requireOldQuiet, own: map[string]bool{}, oldEntries: map[string]client.ExecutionLogEntry{},
		migration: NewMigrationTally()}
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

// Look-back of the per-source migration: how much of the old key's history
// its first evaluation reads to learn each source's cadence.
const (
	MigrationLookback = 30 * 24 * time.Hour
	lookbackEntries   = 5 * logPageSize // the newest calls, when there are more
)

// gateRead is what one evaluation read: the old key, the server's time, and
// the calls of each key new since the previous read.
type gateRead struct {
	oldKey   client.APIKey
	now      time.Time
	old, new []client.ExecutionLogEntry
}

func (g *gate) eval(ctx context.Context) (GateReport, error) {
	in, err := g.read(ctx)
	if err != nil {
		return GateReport{}, err
	}
	now := in.now
	rep := GateReport{Now: now, QuietPeriod: duration.JSON(g.quiet), Old: g.old, New: g.new, NewCreatedAt: g.since, OldRevoked: !in.oldKey.Active()}
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
			fresh = append(fresh, e)
			if !e.At.Before(windowStart) {
				g.oldEntries[e.ID] = e
			}
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
		if lu := in.oldKey.LastUsedAt; lu != nil {
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
		g.migration.AddOld(fresh...)
		for _, e := range in.new {
			if g.theirs(e) {
				g.migration.AddNew(e)
			}
		}
		rep.Migration = g.migration.Migrations(g.quiet, now)
		migrationHolds, rep.HeldUntil = MigrationHolds(rep.Migration)
	}
	rep.Passed = rep.NewUsed && rep.OldQuiet && !migrationHolds
	return rep, nil
}

// migrating says the gate follows each source's move: a planned rotation
// whose successor exists and whose old key still answers.
// theirs is a call with the new key made by the automation: not plana's
// own check that it answers (the issuer's may come after this machine
// listed its calls, when the rotation was carried on from another machine),
// and not a call BOS refused.
func (g *gate) theirs(e client.ExecutionLogEntry) bool {
	return !g.own[e.ID] && !planaCheck(e) && e.Status != http.StatusUnauthorized
}

func (g *gate) migrating() bool { return g.requireOldQuiet && g.new != nil }

// read is one evaluation's reads: from the shared feed when one is running
// (its first batch brings the keys' past), else by the gate's own requests.
func (g *gate) read(ctx context.Context) (gateRead, error) {
	if g.sub == nil && g.feed != nil {
		// The look-back starts from the server's present; with no answer
		// from it yet, the gate's own first read finds it.
		if now, ok := g.api.ServerNow(); ok {
			g.subscribe(now)
		}
	}
	if g.sub != nil {
		return g.readFeed(ctx)
	}
	return g.readDirect(ctx)
}

// readDirect reads the old key, then the old key's calls since the last
// read (its first read reaches back over the look-back window for the
// sources' cadences), then the new key's while they still matter.
func (g *gate) readDirect(ctx context.Context) (gateRead, error) {
	oldKey, err := g.api.GetKey(ctx, g.old.ID)
	if err != nil {
		return gateRead{}, fmt.Errorf("reading the old key: %w", err)
	}
	now, ok := g.api.ServerNow()
	if !ok {
		return gateRead{}, errNoServerTime
	}
	in := gateRead{oldKey: *oldKey, now: now}
	if g.requireOldQuiet && oldKey.Active() {
		opts := client.ExecutionLogOptions{KeyID: g.old.ID, Since: later(g.oldFrom, now.Add(-g.quiet)), PageSize: logPageSize}
		if g.migrating() && !g.lookedBack {
			opts.Since, opts.Limit = now.Add(-MigrationLookback), lookbackEntries
		}
		err := g.api.ExecutionLogPages(ctx, opts, func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				// A future stamp must not move the next read past the
				// calls made meanwhile.
				if e.At.After(g.oldFrom) && !e.At.After(now) {
					g.oldFrom = e.At
				}
			}
			in.old = append(in.old, es...)
			return nil
		})
		if err != nil {
			return in, fmt.Errorf("reading the old key's execution log: %w", err)
		}
		g.lookedBack = true
		// The log was read after now was taken: a call made meanwhile is
		// not from BOS's future. The log's own answer dates the read.
		if n, ok := g.api.ServerNow(); ok && n.After(in.now) {
			in.now = n
		}
	}
	// The new key's calls matter until its first use, and while the
	// migration follows sources that have not reached it.
	if g.new != nil && (!g.newUsed || g.migrating()) {
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
				}
				// The last call seen comes again (since is inclusive):
				// a first use and a first call per source are minimums,
				// so it counts once.
				in.new = append(in.new, es...)
				return nil
			})
		if err != nil {
			return in, fmt.Errorf("reading the new key's execution log: %w", err)
		}
	}
	return in, nil
}

var errNoServerTime = errors.New("the server sent no Date header: the gate needs the server's time, and will not trust the local clock")

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

// subscribe hands the gate's reads to the feed from where its own left off,
// or, on its first read, from where readDirect would have started (now is
// the server's present): the feed's first batch brings that past.
func (g *gate) subscribe(now time.Time) {
	old := Want{KeyID: g.old.ID, Since: now.Add(-g.quiet), State: true}
	switch {
	case g.migrating() && !g.lookedBack:
		old.Since, old.Limit = now.Add(-MigrationLookback), lookbackEntries
	case !g.oldFrom.IsZero():
		// Since is inclusive and the last call read was counted: start
		// after it.
		old.Since = later(g.oldFrom.Add(time.Nanosecond), old.Since)
	}
	g.lookedBack = true
	wants := []Want{old}
	if g.new != nil {
		since := g.since
		if !g.newFrom.IsZero() {
			since = later(g.newFrom.Add(time.Nanosecond), since)
		}
		wants = append(wants, Want{KeyID: g.new.ID, Since: since})
	}
	g.sub = g.feed.Subscribe(wants...)
}

// close ends the gate's subscription to the feed.
func (g *gate) close() {
	if g.sub != nil {
		g.sub.Close()
		g.sub = nil
	}
}

// readFeed takes the next read of the shared feed.
func (g *gate) readFeed(ctx context.Context) (gateRead, error) {
	var after time.Time
	if g.current {
		after = time.Now()
	}
	b, err := g.sub.NextAfter(ctx, after)
	if err != nil {
		return gateRead{}, err
	}
	if b.Err != nil {
		return gateRead{}, b.Err
	}
	in := gateRead{now: b.Now}
	k, ok := b.Keys[g.old.ID]
	if !ok {
		return gateRead{}, fmt.Errorf("reading the old key: %s is not in the workspace's keys", g.old.Prefix)
	}
	in.oldKey = k
	for _, e := range b.Entries {
		switch e.KeyID {
		case g.old.ID:
			if e.At.After(g.oldFrom) && !e.At.After(in.now) {
				g.oldFrom = e.At
			}
			in.old = append(in.old, e)
		case g.newID():
			if e.At.After(g.newFrom) {
				g.newFrom = e.At
			}
			in.new = append(in.new, e)
		}
	}
	return in, nil
}

// newID is the successor's id, "" with none (no entry has that).
func (g *gate) newID() string {
	if g.new == nil {
		return ""
	}
	return g.new.ID
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
