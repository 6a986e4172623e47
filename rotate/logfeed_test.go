package rotate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

// countingAPI is a management client whose requests to the world's
// emulator are counted.
func countingAPI(t *testing.T, w *world) (*client.Client, *atomic.Int64) {
	var n atomic.Int64
	return w.apiThrough(t, func(*http.Request) { n.Add(1) }), &n
}

type fleetKey struct {
	key   client.APIKey
	plain string
}

func mintFleet(t *testing.T, w *world, n int) []fleetKey {
	var out []fleetKey
	for i := range n {
		plain, k, err := w.srv.MintKey(context.Background(), w.old.CreatedBy.ID, fmt.Sprintf("fleet %d", i), []string{"stock:read"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fleetKey{k, plain})
	}
	return out
}

func (w *world) mustCall(ua string, plain string) {
	w.t.Helper()
	if err := w.call(ua, plain); err != nil {
		w.t.Fatal(err)
	}
}

// requestsPerRead is how many requests one read of the feed takes once
// every subscriber is caught up.
func requestsPerRead(t *testing.T, w *world, keys []fleetKey) int64 {
	api, n := countingAPI(t, w)
	feed := NewLogFeed(api, time.Hour)
	var subs []*Subscription
	since := w.srv.Now().Add(-time.Minute)
	for _, k := range keys {
		subs = append(subs, feed.Subscribe(Want{KeyID: k.key.ID, Since: since, State: true}))
	}
	ctx := context.Background()
	feed.Read(ctx) // the first read catches everyone up
	for _, k := range keys {
		w.mustCall("job/1", k.plain)
	}
	n.Store(0)
	feed.Read(ctx)
	got := n.Load()
	for i, s := range subs {
		b, err := s.Next(ctx)
		if err != nil || b.Err != nil {
			t.Fatal(err, b.Err)
		}
		if _, ok := b.Keys[keys[i].key.ID]; !ok {
			t.Errorf("subscriber %d got no state of its key", i)
		}
	}
	return got
}

func TestFeedRequestsPerReadDoNotGrowWithKeys(t *testing.T) {
	w := newWorld(t)
	keys := mintFleet(t, w, 30)
	one := requestsPerRead(t, w, keys[:1])
	many := requestsPerRead(t, w, keys)
	if one != 2 {
		t.Errorf("one key: %d requests per read, want 2 (the log, the key)", one)
	}
	if many != one {
		t.Errorf("30 keys: %d requests per read, 1 key: %d; want the same", many, one)
	}
}

func TestFeedHandsEachSubscriberItsOwnEntriesOnce(t *testing.T) {
	w := newWorld(t)
	keys := mintFleet(t, w, 3)
	ctx := context.Background()
	// Calls before any subscription: a key followed from before them gets
	// them by a catch-up read, one followed from after does not.
	w.mustCall("early/1", keys[0].plain)
	w.mustCall("early/1", keys[2].plain)
	w.srv.Advance(time.Minute)
	start := w.srv.Now()

	api, _ := countingAPI(t, w)
	feed := NewLogFeed(api, time.Hour)
	a := feed.Subscribe(Want{KeyID: keys[0].key.ID, Since: start})
	feed.Read(ctx)
	w.mustCall("a/1", keys[0].plain)
	w.mustCall("b/1", keys[1].plain)
	w.mustCall("c/1", keys[2].plain)
	// b follows from its start; c from before the feed began.
	b := feed.Subscribe(Want{KeyID: keys[1].key.ID, Since: start})
	c := feed.Subscribe(Want{KeyID: keys[2].key.ID, Since: start.Add(-time.Hour)})
	// Several reads overlap each other: nothing may come twice.
	for range 3 {
		feed.Read(ctx)
	}
	got := map[*Subscription][]string{}
	for _, s := range []*Subscription{a, b, c} {
		bt, err := s.Next(ctx)
		if err != nil || bt.Err != nil {
			t.Fatal(err, bt.Err)
		}
		if bt.Now.IsZero() {
			t.Error("a batch without the server's time")
		}
		for _, e := range bt.Entries {
			got[s] = append(got[s], e.UserAgent)
		}
	}
	want := map[*Subscription]string{a: "[a/1]", b: "[b/1]", c: "[early/1 c/1]"}
	for s, wnt := range want {
		if fmt.Sprint(got[s]) != wnt {
			t.Errorf("subscriber got %v, want %s", got[s], wnt)
		}
	}
}

func TestFeedRunServesWaitingSubscribers(t *testing.T) {
	w := newWorld(t)
	keys := mintFleet(t, w, 2)
	api, _ := countingAPI(t, w)
	feed := NewLogFeed(api, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); feed.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	start := w.srv.Now()
	s := feed.Subscribe(Want{KeyID: keys[0].key.ID, Since: start})
	defer s.Close()
	w.mustCall("late/1", keys[0].plain)
	deadline, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	for {
		b, err := s.Next(deadline)
		if err != nil {
			t.Fatalf("no batch brought the call: %v", err)
		}
		if len(b.Entries) > 0 {
			if b.Entries[0].UserAgent != "late/1" {
				t.Errorf("got %+v", b.Entries)
			}
			return
		}
	}
}

// Gates of rotations under way in one process read the execution log
// through one feed: a gate's first read costs one request of its own (the
// old key's look-back), and a poll of them all then costs the feed's
// requests, whatever their number.
func TestGatesShareTheFeed(t *testing.T) {
	const q = time.Hour
	w := newWorld(t)
	ctx := context.Background()
	second := mintFleet(t, w, 1)[0]
	startRotation(t, w, q) // the world's key: its new key already used
	if _, err := w.rotator().Rotate(ctx, second.key, Options{QuietPeriod: q, NoWait: true, PollInterval: time.Millisecond}); !errors.Is(err, ErrPending) {
		t.Fatalf("want the second rotation waiting: %v", err)
	}
	api, n := countingAPI(t, w)
	if _, err := api.Me(ctx); err != nil { // the server's present, as a run has it
		t.Fatal(err)
	}
	feed := NewLogFeed(api, time.Hour)
	// Run reads at once for each new subscriber, as in a fleet.
	runCtx, stopRun := context.WithCancel(ctx)
	var running sync.WaitGroup
	running.Add(1)
	go func() { defer running.Done(); feed.Run(runCtx) }()
	var gates []*gate
	for _, id := range []string{w.old.ID, second.key.ID} {
		j, err := w.rotator().journals().load(id)
		if err != nil || j == nil {
			t.Fatal(err)
		}
		g := newGate(api, j, q, true)
		g.feed = feed
		defer g.close()
		n.Store(0)
		if _, err := g.eval(ctx); err != nil {
			t.Fatal(err)
		}
		// The feed's read (the log, the keys), plus the old key's
		// look-back; the new key's calls come with the shared read.
		if got := n.Load(); got != 3 {
			t.Errorf("a gate's first read took %d requests, want 3", got)
		}
		gates = append(gates, g)
	}
	stopRun()
	running.Wait()
	// The second rotation's new key is used now; the first's old key too.
	j2, _ := w.rotator().journals().load(second.key.ID)
	newPlain, err := w.store.Get(secret.KeyName(j2.New.ID))
	if err != nil {
		t.Fatal(err)
	}
	w.mustCall("job/2", newPlain)
	w.mustCall("stock-sync/1.4", w.oldPlain)

	n.Store(0)
	feed.Read(ctx)
	var reps []GateReport
	for _, g := range gates {
		rep, err := g.eval(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, rep)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("one poll of two gates took %d requests, want the feed's 2 (the log, the keys)", got)
	}
	// The second key's old key was never called: its new key's first use
	// is all its gate waited for.
	if !reps[1].NewUsed || !reps[1].Passed {
		t.Errorf("the second gate missed its new key's call: %+v", reps[1])
	}
	if reps[0].OldQuiet || reps[0].OldLastUse.IsZero() {
		t.Errorf("the first gate missed its old key's call: %+v", reps[0])
	}
}

// followOne is a feed (read by hand) and its subscriber following one key
// of a new world from now on.
func followOne(t *testing.T) (*world, fleetKey, *LogFeed, *Subscription) {
	w := newWorld(t)
	key := mintFleet(t, w, 1)[0]
	api, _ := countingAPI(t, w)
	feed := NewLogFeed(api, time.Hour)
	s := feed.Subscribe(Want{KeyID: key.key.ID, Since: w.srv.Now()})
	t.Cleanup(s.Close)
	return w, key, feed, s
}

// A read that fails after one whose batch was not taken yet must not take
// that batch's calls down with it: the subscriber gets the failure, then
// the calls with the next batch.
func TestFeedKeepsCallsAcrossAFailedRead(t *testing.T) {
	w, key, feed, s := followOne(t)
	ctx := context.Background()
	feed.Read(ctx)
	if _, err := s.Next(ctx); err != nil {
		t.Fatal(err)
	}
	w.mustCall("job/1", key.plain)
	feed.Read(ctx) // brings the call; nobody takes it yet
	failed, cancel := context.WithCancel(ctx)
	cancel()
	feed.Read(failed)
	b, err := s.Next(ctx)
	if err != nil || b.Err == nil {
		t.Fatalf("want the failed read's error, got %v, %+v", err, b)
	}
	feed.Read(ctx)
	if b, err = s.Next(ctx); err != nil || b.Err != nil || len(b.Entries) != 1 || b.Entries[0].UserAgent != "job/1" {
		t.Fatalf("the call read before the failure is lost: %v, %+v", err, b)
	}
}

// NextAfter skips a batch read before it was asked for (the check right
// before a revoke must see the calls made until then) and keeps its calls.
func TestFeedNextAfterWaitsForACurrentRead(t *testing.T) {
	w, key, feed, s := followOne(t)
	ctx := context.Background()
	<-feed.wake // Subscribe's own call for a read
	w.mustCall("before/1", key.plain)
	feed.Read(ctx) // a batch waits, read before the next call
	w.mustCall("after/1", key.plain)
	got := make(chan FeedBatch, 1)
	asked := time.Now()
	go func() {
		b, _ := s.NextAfter(ctx, asked)
		got <- b
	}()
	select {
	case b := <-got:
		t.Fatalf("NextAfter took a batch read before it was asked for: %+v", b)
	case <-feed.wake: // it asked the feed to read
	}
	feed.Read(ctx)
	b := <-got
	var uas []string
	for _, e := range b.Entries {
		uas = append(uas, e.UserAgent)
	}
	if fmt.Sprint(uas) != "[before/1 after/1]" {
		t.Errorf("got %v, want both calls", uas)
	}
}

// The calls of keys nobody follows are read but not kept; they still move
// the cursor, so the next read does not fetch them again.
func TestFeedCursorFollowsEveryKeysCalls(t *testing.T) {
	w := newWorld(t)
	keys := mintFleet(t, w, 2)
	api, _ := countingAPI(t, w)
	ctx := context.Background()
	feed := NewLogFeed(api, time.Hour)
	s := feed.Subscribe(Want{KeyID: keys[0].key.ID, Since: w.srv.Now()})
	defer s.Close()
	feed.Read(ctx)
	w.srv.Advance(time.Second)
	w.mustCall("other/1", keys[1].plain)
	feed.Read(ctx)
	var last time.Time
	es, err := w.api.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: keys[1].key.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		last = later(last, e.At)
	}
	feed.mu.Lock()
	cursor := feed.cursor
	feed.mu.Unlock()
	if last.IsZero() || cursor.Before(last) {
		t.Errorf("the cursor is at %s, before the other key's call at %s", cursor, last)
	}
	if b, err := s.Next(ctx); err != nil || len(b.Entries) != 0 {
		t.Errorf("the follower of one key got another's calls: %v, %+v", err, b.Entries)
	}
}
