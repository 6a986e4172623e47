package gate

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
)

// requestsPerRead is how many requests one read of the feed takes once
// every subscriber is caught up.
func requestsPerRead(t *testing.T, w *rotatetest.World, keys []rotatetest.Minted) int64 {
	api, n := w.Counting(t)
	feed := NewFeed(api, time.Hour)
	var subs []*subscription
	since := w.Srv.Now().Add(-time.Minute)
	for _, k := range keys {
		subs = append(subs, feed.subscribe(want{KeyID: k.Key.ID, Since: since, State: true}))
	}
	ctx := context.Background()
	feed.Read(ctx) // the first read catches everyone up
	for _, k := range keys {
		w.MustCall("job/1", k.Plain)
	}
	n.Store(0)
	feed.Read(ctx)
	got := n.Load()
	for i, s := range subs {
		b, err := s.Next(ctx)
		if err != nil || b.Err != nil {
			t.Fatal(err, b.Err)
		}
		if _, ok := b.Keys[keys[i].Key.ID]; !ok {
			t.Errorf("subscriber %d got no state of its key", i)
		}
	}
	return got
}

func TestFeedRequestsPerReadDoNotGrowWithKeys(t *testing.T) {
	w := rotatetest.New(t)
	keys := w.Mint(t, 30)
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
	w := rotatetest.New(t)
	keys := w.Mint(t, 3)
	ctx := context.Background()
	// Calls before any subscription: a key followed from before them gets
	// them by a catch-up read, one followed from after does not.
	w.MustCall("early/1", keys[0].Plain)
	w.MustCall("early/1", keys[2].Plain)
	w.Srv.Advance(time.Minute)
	start := w.Srv.Now()

	api, _ := w.Counting(t)
	feed := NewFeed(api, time.Hour)
	a := feed.subscribe(want{KeyID: keys[0].Key.ID, Since: start})
	feed.Read(ctx)
	w.MustCall("a/1", keys[0].Plain)
	w.MustCall("b/1", keys[1].Plain)
	w.MustCall("c/1", keys[2].Plain)
	// b follows from its start; c from before the feed began.
	b := feed.subscribe(want{KeyID: keys[1].Key.ID, Since: start})
	c := feed.subscribe(want{KeyID: keys[2].Key.ID, Since: start.Add(-time.Hour)})
	// Several reads overlap each other: nothing may come twice.
	for range 3 {
		feed.Read(ctx)
	}
	got := map[*subscription][]string{}
	for _, s := range []*subscription{a, b, c} {
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
	want := map[*subscription]string{a: "[a/1]", b: "[b/1]", c: "[early/1 c/1]"}
	for s, wnt := range want {
		if fmt.Sprint(got[s]) != wnt {
			t.Errorf("subscriber got %v, want %s", got[s], wnt)
		}
	}
}

func TestFeedRunServesWaitingSubscribers(t *testing.T) {
	w := rotatetest.New(t)
	keys := w.Mint(t, 2)
	api, _ := w.Counting(t)
	feed := NewFeed(api, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); feed.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	start := w.Srv.Now()
	s := feed.subscribe(want{KeyID: keys[0].Key.ID, Since: start})
	defer s.Close()
	w.MustCall("late/1", keys[0].Plain)
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

// followOne is a feed (read by hand) and its subscriber following one key
// of a new world from now on.
func followOne(t *testing.T) (*rotatetest.World, rotatetest.Minted, *Feed, *subscription) {
	w := rotatetest.New(t)
	key := w.Mint(t, 1)[0]
	api, _ := w.Counting(t)
	feed := NewFeed(api, time.Hour)
	s := feed.subscribe(want{KeyID: key.Key.ID, Since: w.Srv.Now()})
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
	w.MustCall("job/1", key.Plain)
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
	w.MustCall("before/1", key.Plain)
	feed.Read(ctx) // a batch waits, read before the next call
	w.MustCall("after/1", key.Plain)
	got := make(chan batch, 1)
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
	w := rotatetest.New(t)
	keys := w.Mint(t, 2)
	api, _ := w.Counting(t)
	ctx := context.Background()
	feed := NewFeed(api, time.Hour)
	s := feed.subscribe(want{KeyID: keys[0].Key.ID, Since: w.Srv.Now()})
	defer s.Close()
	feed.Read(ctx)
	w.Srv.Advance(time.Second)
	w.MustCall("other/1", keys[1].Plain)
	feed.Read(ctx)
	var last time.Time
	es, err := w.API.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: keys[1].Key.ID})
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
