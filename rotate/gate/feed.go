package gate

import (
	"context"
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
	// Shared says Since is near (a quiet window, the last read): the past
	// is read in one read with the other keys', not in one of its own.
	Shared bool
}

// batch is what one read of the feed brought a subscriber.
type batch struct {
	// Now is the server's time when the read ended, Began when it began
	// (Now when the server's time was not known yet).
	Now, Began time.Time
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
	// Keys, when set, lists the workspace's keys, from a listing that
	// began at since or later, for the state of the keys followed: a fleet
	// shares its run's listing. nil: the feed reads them itself.
	Keys func(ctx context.Context, since time.Time) ([]client.APIKey, error)

	mu     sync.Mutex
	subs   map[*subscription]bool
	wake   chan struct{}
	cursor time.Time            // where the next read starts (less feedOverlap)
	recent map[string]time.Time // ids read within feedOverlap of the cursor
	// listPages is how many pages the last key listing took: the listing
	// serves the keys' state only while it is cheaper than a read per key.
	listPages int
	// lastRead is when the last read began: the keys' state is read anew
	// from then on.
	lastRead time.Time
	// held counts the rotations still working toward their gates (Hold),
	// and urgent says a read was asked that must not wait for them.
	held   int
	urgent bool
}

// Hold says one more rotation works toward its gate: a read asked for
// waits (up to one interval) until none does, so that rotations reaching
// their gates together share one read.
func (f *Feed) Hold() {
	f.mu.Lock()
	f.held++
	f.mu.Unlock()
}

// Release says a rotation held stopped working: it waits, or it ended.
func (f *Feed) Release() {
	f.mu.Lock()
	f.held--
	idle := f.held <= 0
	f.mu.Unlock()
	if idle {
		f.poke()
	}
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
		s.feed.mu.Lock()
		s.feed.urgent = true
		s.feed.mu.Unlock()
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
	var last time.Time // when the last read began
	for {
		notBefore := time.Time{}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.wake:
			notBefore = last.Add(gap)
		}
		if !f.settle(ctx, notBefore, time.Now().Add(max(f.interval, maxHold))) {
			return
		}
		f.mu.Lock()
		n := len(f.subs)
		// This read serves whoever asked so far; a call from now on
		// needs the next.
		f.urgent = false
		f.mu.Unlock()
		if n > 0 {
			select {
			case <-f.wake:
			default:
			}
			last = time.Now()
			f.Read(ctx)
		}
		t.Reset(f.interval)
	}
}

// maxHold is the longest a read asked for waits for rotations still
// working toward their gates: one busy for longer (a slow exec: target)
// does not keep the others from their first look.
const maxHold = 30 * time.Second

// settle waits before a read asked for: until notBefore, and while
// rotations held still work toward their gates, until until at the latest;
// an urgent ask (the check before a revoke) does not wait for them. It
// reports false when ctx ended.
func (f *Feed) settle(ctx context.Context, notBefore, until time.Time) bool {
	for {
		f.mu.Lock()
		held := f.held > 0 && !f.urgent
		f.mu.Unlock()
		wait := time.Until(notBefore)
		if wait <= 0 {
			if !held {
				return true
			}
			if wait = time.Until(until); wait <= 0 {
				return true
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		case <-f.wake: // a release, an urgent ask, a subscriber: look again
			t.Stop()
		}
	}
}

// listed is the keys p wants the state of, from f.Keys.
func (f *Feed) listed(ctx context.Context, p readPlan) (map[string]client.APIKey, error) {
	all, err := f.Keys(ctx, p.stateSince)
	if err != nil {
		return nil, err
	}
	out := make(map[string]client.APIKey, len(p.stateIDs))
	for _, k := range all {
		if p.stateIDs[k.ID] {
			out[k.ID] = k
		}
	}
	return out, nil
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
