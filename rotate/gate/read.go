package gate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
)

const pageSize = 1000

// reading is what one evaluation read: the old key, the server's time, and
// the calls of each key new since the previous read.
type reading struct {
	oldKey client.APIKey
	// now is the server's present when the read began, end when it ended.
	now, end time.Time
	old, new []client.ExecutionLogEntry
	// began and ended are when the read began and ended on this process's
	// monotonic clock; confirming says it is a second look (looks).
	began, ended time.Time
	confirming   bool
}

// read is one evaluation's reads: from the shared feed when one is running
// (its first batch brings the keys' past), else by the gate's own requests;
// and, for a second look, the old key's quiet window read again.
func (g *Gate) read(ctx context.Context) (reading, error) {
	if g.sub == nil && g.feed != nil {
		// The look-back starts from the server's present; with no answer
		// from it yet, the gate's own first read finds it.
		if now, ok := g.api.ServerNow(); ok {
			g.subscribe(now)
		}
	}
	var in reading
	var err error
	if g.sub != nil {
		in, err = g.readFeed(ctx)
	} else {
		in, err = g.readDirect(ctx)
	}
	if err != nil {
		return in, err
	}
	in.ended = time.Now()
	if in.confirming = g.looks.confirms(in.began); in.confirming {
		err = g.reread(ctx, &in)
	}
	return in, err
}

// readDirect reads the old key, then the old key's calls since the last
// read (its first read reaches back over the look-back window for the
// sources' cadences), then the new key's while they still matter.
func (g *Gate) readDirect(ctx context.Context) (reading, error) {
	began := time.Now()
	oldKey, err := g.api.GetKey(ctx, g.old.ID)
	if err != nil {
		return reading{}, fmt.Errorf("reading the old key: %w", err)
	}
	now, ok := g.api.ServerNow()
	if !ok {
		return reading{}, errNoServerTime
	}
	in := reading{oldKey: *oldKey, now: now, end: now, began: began}
	if g.requireOldQuiet && oldKey.Active() {
		opts := client.ExecutionLogOptions{KeyID: g.old.ID, Since: later(g.oldFrom, now.Add(-g.quiet)), PageSize: pageSize}
		if g.migrating() && !g.lookedBack {
			opts.Since, opts.Limit = now.Add(-Lookback), lookbackEntries
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
		// not from BOS's future. The log's own answer dates the read's end.
		if n, ok := g.api.ServerNow(); ok && n.After(in.end) {
			in.end = n
		}
	}
	// The new key's calls matter until its first use, and while the
	// migration follows sources that have not reached it.
	if g.new != nil && (!g.newUsed || g.migrating()) {
		from := g.newFrom
		if from.IsZero() {
			from = g.since
		}
		err := g.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: g.new.ID, Since: from, PageSize: pageSize},
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

// subscribe hands the gate's reads to the feed from where its own left off,
// or, on its first read, from where readDirect would have started (now is
// the server's present): the feed's first batch brings that past.
func (g *Gate) subscribe(now time.Time) {
	old := want{KeyID: g.old.ID, Since: now.Add(-g.quiet), State: true, Shared: true}
	switch {
	case g.migrating() && !g.lookedBack:
		old.Since, old.Limit, old.Shared = now.Add(-Lookback), lookbackEntries, false
	case !g.oldFrom.IsZero():
		// Since is inclusive and the last call read was counted: start
		// after it.
		old.Since = later(g.oldFrom.Add(time.Nanosecond), old.Since)
	}
	g.lookedBack = true
	wants := []want{old}
	if g.new != nil {
		since := g.since
		if !g.newFrom.IsZero() {
			since = later(g.newFrom.Add(time.Nanosecond), since)
		}
		// Since its last read, not its creation: a window, read with the
		// others.
		wants = append(wants, want{KeyID: g.new.ID, Since: since, Shared: !g.newFrom.IsZero()})
	}
	g.sub = g.feed.subscribe(wants...)
}

// readFeed takes the next read of the shared feed.
func (g *Gate) readFeed(ctx context.Context) (reading, error) {
	var after time.Time
	if g.current {
		after = time.Now()
	}
	b, err := g.sub.NextAfter(ctx, after)
	if err != nil {
		return reading{}, err
	}
	if b.Err != nil {
		return reading{}, b.Err
	}
	in := reading{now: b.Began, end: b.Now, began: b.started}
	k, ok := b.Keys[g.old.ID]
	if !ok {
		return reading{}, fmt.Errorf("reading the old key: %s is not in the workspace's keys", g.old.Prefix)
	}
	in.oldKey = k
	for _, e := range b.Entries {
		switch e.KeyID {
		case g.old.ID:
			if e.At.After(g.oldFrom) && !e.At.After(in.end) {
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
func (g *Gate) newID() string {
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

// errNoServerTime is an answer without the server's time: the gate refuses
// to decide on the local clock.
var errNoServerTime = errors.New("the server sent no Date header: the gate needs the server's time, and will not trust the local clock")
