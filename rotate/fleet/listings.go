package fleet

import (
	"context"
	"sync"

	"github.com/plana-cli/plana/client"
)

// listings shares the workspace's key listing among the rotations of one
// process. A rotation asking for the keys gets a listing that began after
// it asked (the race rule needs one that late), so a caller arriving while a
// listing runs waits for the next, which serves everyone who arrived
// meanwhile: one listing at a time, whatever the number of rotations.
type listings struct {
	api *client.Client
	ctx context.Context // a listing serves many callers: no one of them cancels it

	mu      sync.Mutex
	next    *listing // the listing the callers arriving now wait for
	running bool
}

type listing struct {
	done chan struct{}
	keys []client.APIKey // shared by its callers: read-only
	err  error
}

// newListings lists through api until ctx ends.
func newListings(ctx context.Context, api *client.Client) *listings {
	return &listings{api: api, ctx: ctx}
}

// All is every key of the workspace, active and revoked, from a listing
// that began after the call. The slice is shared: do not change it.
func (l *listings) All(ctx context.Context) ([]client.APIKey, error) {
	l.mu.Lock()
	if l.next == nil {
		l.next = &listing{done: make(chan struct{})}
	}
	mine := l.next
	if !l.running {
		l.startLocked()
	}
	l.mu.Unlock()
	select {
	case <-mine.done:
		return mine.keys, mine.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startLocked runs the waiting listing; l.mu is held.
func (l *listings) startLocked() {
	cur := l.next
	l.next, l.running = nil, true
	go func() {
		cur.keys, cur.err = l.api.ListKeys(l.ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: pageSize})
		close(cur.done)
		l.mu.Lock()
		l.running = false
		if l.next != nil {
			l.startLocked()
		}
		l.mu.Unlock()
	}()
}
