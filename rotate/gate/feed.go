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
