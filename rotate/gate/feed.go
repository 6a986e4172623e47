package gate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
)

// feedOverlap is how far back each read of the feed reaches before its
// cursor: a call stamped just before the last entry read can be committed
// just after it was read. Entries read twice are dropped by id.
const feedOverlap = 5 * time.Second

// feedHorizon is how far back the feed's first read of the whole log may
// start: every call the workspace made since then is read once.
const feedHorizon = time.Minute

// want is one key a subscriber follows: its calls from Since on, and, with
// State, the key itself at each read (revoked yet? last used?).
type want struct {
	KeyID string
	Since time.Time
	State bool
	// Limit, when Since lies before the feed's shared read, keeps only the
	// key's newest Limit calls of that older past; 0 keeps them all.
	Limit int
}

// batch is what one read of the feed brought a subscriber.
type batch struct {
	// Now is the server's time when the read ended.
	Now time.Time
	// Entries are the followed keys' calls new since the previous batch,
	// oldest first.
	Entries []client.ExecutionLogEntry
	// Keys are the followed keys that asked for State, by id.
	Keys map[string]client.APIKey
	Err  error
	// started is when the last read in the batch began, on this clock.
	started time.Time
}

// Feed reads the execution log once per interval for every rotation under
// way in the process and hands each its keys' entries: the requests per poll
// stay those of one rotation whatever the number of keys. Run it with Run;
// subscribers take batches with Next.
type Feed struct {
	api      *client.Client
	interval time.Duration

	mu     sync.Mutex
	subs   map[*subscription]bool
	wake   chan struct{}
	cursor time.Time            // where the next read starts (less feedOverlap)
	recent map[string]time.Time // ids read within feedOverlap of the cursor
	// listPages is how many pages the last key listing took: the listing
	// serves the keys' state only while it is cheaper than a read per key.
	listPages int
}

// NewFeed makes a feed that reads through api every interval.
func NewFeed(api *client.Client, interval time.Duration) *Feed {
	return &Feed{api: api, interval: interval, subs: map[*subscription]bool{}, wake: make(chan struct{}, 1), recent: map[string]time.Time{}}
}

// subscription is one rotation's view of the feed.
type subscription struct {
	feed    *Feed
	wants   map[string]want
	fresh   map[string]bool // wanted keys whose past the feed has not read yet
	ready   chan struct{}
	pending batch
	has     bool
}

// Subscribe follows keys; the next read of the feed catches each up from its
// Since.
func (f *Feed) subscribe(keys ...want) *subscription {
	s := &subscription{feed: f, wants: map[string]want{}, fresh: map[string]bool{}, ready: make(chan struct{}, 1)}
	f.mu.Lock()
	for _, w := range keys {
		s.wants[w.KeyID] = w
		s.fresh[w.KeyID] = true
	}
	f.subs[s] = true
	f.mu.Unlock()
	f.poke()
	return s
}

// Close stops s.
func (s *subscription) Close() {
	s.feed.mu.Lock()
	delete(s.feed.subs, s)
	s.feed.mu.Unlock()
}

// Next waits for the next read of the feed and returns what it brought s:
// every read since the last batch taken, merged. A batch with Err carries
// no entries; those read before the failure wait for the next batch.
func (s *subscription) Next(ctx context.Context) (batch, error) {
	return s.NextAfter(ctx, time.Time{})
}

// NextAfter is Next from a read that began after t at the earliest: what
// the log held at t, not before. It asks the feed to read at once.
func (s *subscription) NextAfter(ctx context.Context, t time.Time) (batch, error) {
	if !t.IsZero() {
		s.feed.poke()
	}
	for {
		s.feed.mu.Lock()
		if s.has && s.pending.Err != nil {
			err := s.pending.Err
			s.pending.Err, s.has = nil, false
			s.feed.mu.Unlock()
			return batch{Err: err}, nil
		}
		if s.has && !s.pending.started.Before(t) {
			b := s.pending
			s.pending, s.has = batch{}, false
			s.feed.mu.Unlock()
			return b, nil
		}
		s.feed.mu.Unlock()
		select {
		case <-ctx.Done():
			return batch{}, ctx.Err()
		case <-s.ready:
		}
	}
}

// Ready says Next would return at once: a batch, or a failed read, waits.
func (s *subscription) Ready() bool {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	return s.has
}

func (f *Feed) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run reads the feed until ctx is done: soon when a subscriber asks (a new
// one, a check before a revoke), and every interval while any is left.
func (f *Feed) Run(ctx context.Context) {
	// Reads asked for come at most one per gap: rotations reaching their
	// gates together share one, rather than each re-reading the log's
	// overlap of the whole workspace.
	gap := min(f.interval/4, time.Second)
	t := time.NewTimer(f.interval)
	defer t.Stop()
	for {
		f.mu.Lock()
		n := len(f.subs)
		f.mu.Unlock()
		started := time.Now()
		if n > 0 {
			// This read serves whoever asked so far; a call from now on
			// needs the next.
			select {
			case <-f.wake:
			default:
			}
			f.Read(ctx)
		}
		t.Reset(f.interval)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.wake:
			if wait := time.Until(started.Add(gap)); wait > 0 {
				t.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}
	}
}

// Read is one read of the feed: the log since the cursor, a catch-up read
// for each key newly followed whose past the cursor does not cover, and the
// state of the keys that want it; then every subscriber gets its batch.
func (f *Feed) Read(ctx context.Context) {
	f.mu.Lock()
	subs := make([]*subscription, 0, len(f.subs))
	for s := range f.subs {
		subs = append(subs, s)
	}
	started := time.Now()
	catchUp := map[string]time.Time{}
	limits := map[string]int{} // per key: the largest Limit asked; 0 wins
	stateIDs := map[string]bool{}
	wanted := map[string]bool{}
	for _, s := range subs {
		for id := range s.fresh {
			w := s.wants[id]
			if t, ok := catchUp[id]; !ok || w.Since.Before(t) {
				catchUp[id] = w.Since
			}
			if l, ok := limits[id]; !ok || (l != 0 && (w.Limit == 0 || w.Limit > l)) {
				limits[id] = w.Limit
			}
		}
		for id, w := range s.wants {
			wanted[id] = true
			if w.State {
				stateIDs[id] = true
			}
		}
	}
	if f.cursor.IsZero() {
		// The first read starts at the earliest key's start within
		// feedHorizon: a successor's calls since its creation come with
		// it. A key whose past is older (a look-back over weeks) gets a
		// read of its own rather than the whole workspace's log.
		now, ok := f.api.ServerNow()
		for _, since := range catchUp {
			if ok && since.Before(now.Add(-feedHorizon)) {
				continue
			}
			if f.cursor.IsZero() || since.Before(f.cursor) {
				f.cursor = since
			}
		}
		if f.cursor.IsZero() && len(catchUp) > 0 && ok {
			f.cursor = now
		}
	}
	start := f.cursor
	from := start.Add(-feedOverlap)
	listPages := f.listPages
	f.mu.Unlock()

	// all keeps the followed keys' calls only: the rest of a busy
	// workspace's log is read, moves the cursor, and is let go page by page.
	var all []client.ExecutionLogEntry
	var othersLatest time.Time
	var err error
	if start.IsZero() {
		// Nobody follows a key yet: there is no start to read from.
		subs = nil
	} else {
		err = f.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{Since: from, PageSize: pageSize}, func(es []client.ExecutionLogEntry) error {
			now, ok := f.api.ServerNow()
			for _, e := range es {
				switch {
				case wanted[e.KeyID]:
					all = append(all, e)
				case ok && e.At.After(othersLatest) && !isFuture(e.At, now):
					othersLatest = e.At
				}
			}
			return nil
		})
	}
	// A key followed anew whose past lies before the cursor is read once
	// on its own, up to where the shared read begins.
	own := map[string][]client.ExecutionLogEntry{}
	for id, since := range catchUp {
		if err != nil || !since.Before(from) {
			continue
		}
		err = f.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: id, Since: since, Until: from, PageSize: pageSize, Limit: limits[id]},
			func(es []client.ExecutionLogEntry) error {
				own[id] = append(own[id], es...)
				return nil
			})
	}
	var keys map[string]client.APIKey
	if err == nil && len(stateIDs) > 0 {
		keys, listPages, err = f.readKeys(ctx, stateIDs, listPages)
	}
	now, ok := f.api.ServerNow()
	if err == nil && !ok {
		err = errNoServerTime
	}
	if err != nil {
		err = fmt.Errorf("reading the execution log: %w", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	f.listPages = listPages
	var fresh []client.ExecutionLogEntry
	if err == nil {
		if othersLatest.After(f.cursor) {
			f.cursor = othersLatest
		}
		for _, e := range all {
			if _, dup := f.recent[e.ID]; dup {
				continue
			}
			fresh = append(fresh, e)
			// A stamp ahead of the server's present must not move the
			// cursor past the calls made meanwhile.
			if e.At.After(f.cursor) && !isFuture(e.At, now) {
				f.cursor = e.At
			}
		}
		for _, e := range fresh {
			f.recent[e.ID] = e.At
		}
		for id, at := range f.recent {
			if at.Before(f.cursor.Add(-feedOverlap)) {
				delete(f.recent, id)
			}
		}
		slices.SortFunc(fresh, func(a, b client.ExecutionLogEntry) int { return a.At.Compare(b.At) })
	}
	for _, s := range subs {
		if !f.subs[s] {
			continue // closed meanwhile
		}
		b := &s.pending
		b.Now, b.Err, b.started = now, err, started
		if err == nil {
			for id := range s.fresh {
				b.Entries = append(b.Entries, own[id]...)
			}
			// A key followed anew gets all this read saw of it: earlier
			// reads, before it was followed, may have seen some already.
			for _, e := range all {
				if w, ok := s.wants[e.KeyID]; ok && s.fresh[e.KeyID] && !e.At.Before(w.Since) {
					b.Entries = append(b.Entries, e)
				}
			}
			for _, e := range fresh {
				if w, ok := s.wants[e.KeyID]; ok && !s.fresh[e.KeyID] && !e.At.Before(w.Since) {
					b.Entries = append(b.Entries, e)
				}
			}
			slices.SortFunc(b.Entries, func(a, b client.ExecutionLogEntry) int { return a.At.Compare(b.At) })
			for id, w := range s.wants {
				if k, ok := keys[id]; ok && w.State {
					if b.Keys == nil {
						b.Keys = map[string]client.APIKey{}
					}
					b.Keys[id] = k
				}
			}
			clear(s.fresh)
		}
		s.has = true
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
}

// readKeys reads the keys in ids: by one listing of the workspace while that
// takes fewer pages than there are keys, else one by one.
func (f *Feed) readKeys(ctx context.Context, ids map[string]bool, listPages int) (map[string]client.APIKey, int, error) {
	out := make(map[string]client.APIKey, len(ids))
	if len(ids) > max(listPages, 1) {
		pages := 0
		err := f.api.ListKeysPages(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: pageSize}, func(ks []client.APIKey) error {
			pages++
			for _, k := range ks {
				if ids[k.ID] {
					out[k.ID] = k
				}
			}
			return nil
		})
		if err != nil {
			return nil, listPages, err
		}
		if len(out) == len(ids) {
			return out, pages, nil
		}
		listPages = pages
	}
	for id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		k, err := f.api.GetKey(ctx, id)
		if err != nil {
			return nil, listPages, err
		}
		out[id] = *k
	}
	return out, listPages, nil
}
