package fleet

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// Rotations asking for the keys while a listing runs share the next one,
// which began after they asked: it holds a key created meanwhile, and the
// many callers cost two or three listings, not one each.
func TestListingsShareTheNextListing(t *testing.T) {
	w := newWorld(t)
	var listed atomic.Int32
	firstIn, release := make(chan struct{}), make(chan struct{})
	api := w.APIThrough(t, func(r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/api-keys" {
			if listed.Add(1) == 1 {
				close(firstIn)
				<-release // the first listing runs on while others arrive
			}
		}
	})
	ctx := context.Background()
	l := newListings(ctx, api, nil, time.Time{})

	first := make(chan []client.APIKey, 1)
	go func() {
		keys, err := l.since(ctx, time.Now())
		if err != nil {
			t.Error(err)
		}
		first <- keys
	}()
	<-firstIn
	late := w.Mint(t, 1)[0].Key // created after the first listing began
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got [][]client.APIKey
	for range n {
		wg.Go(func() {
			keys, err := l.since(ctx, time.Now())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got = append(got, keys)
			mu.Unlock()
		})
	}
	// The first caller in line; a straggler may still come after the
	// next listing began and need a third.
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		queued := l.next != nil
		l.mu.Unlock()
		if queued || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // polling the line
	}
	close(release)
	wg.Wait()
	<-first
	for _, keys := range got {
		if !slices.ContainsFunc(keys, func(k client.APIKey) bool { return k.ID == late.ID }) {
			t.Fatal("a caller got a listing that began before it asked: the key created meanwhile is missing")
		}
	}
	if n := listed.Load(); n > 3 {
		t.Errorf("%d listings for 21 callers, want 2 or 3 (the one under way, the next, a straggler's)", n)
	}
}
