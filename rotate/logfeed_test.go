package rotate

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// countingAPI is a management client whose requests to the world's
// emulator are counted.
func countingAPI(t *testing.T, w *world) (*client.Client, *atomic.Int64) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.srv.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(ts.Close)
	mgmt, _, err := w.srv.MintKey(context.Background(), w.old.CreatedBy.ID, "feed admin", []string{client.ScopeManage}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	api, err := client.New(ts.URL, client.WithKeys(mgmt))
	if err != nil {
		t.Fatal(err)
	}
	return api, &n
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
	// The new key of a rotation is followed once it exists.
	a.Follow(Want{KeyID: keys[1].key.ID, Since: start})
	feed.Read(ctx)
	bt, _ := a.Next(ctx)
	if len(bt.Entries) != 1 || bt.Entries[0].UserAgent != "b/1" {
		t.Errorf("a key followed later: %+v", bt.Entries)
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
