package fleet

import (
	"context"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
)

// listings shares the workspace's key listing among the rotations of one
// run. A caller asks for a listing that began at a time or later: the
// run's own listing serves a rotation looking for a rotation under way,
// and the race rule, which needs a listing that began after its create,
// waits for the next one, which serves everyone who arrived meanwhile: one
// listing at a time, whatever the number of rotations.
type listings struct {
	api *client.Client
	ctx context.Context // a listing serves many callers: no one of them cancels it

	mu      sync.Mutex
	last    *listing // the latest listing that ended well
	cur     *listing // the listing under way, if any
	next    *listing // the listing the callers arriving now wait for
	running bool
}

type listing struct {
	began time.Time
	done  chan struct{}
	keys  []client.APIKey // shared by its callers: read-only
	err   error
}

// newListings lists through api until ctx ends. keys, listed at began,
// serve the callers that ask for a listing no later than that.
func newListings(ctx context.Context, api *client.Client, keys []client.APIKey, began time.Time) *listings {
	l := &listings{api: api, ctx: ctx}
	if keys != nil {
		l.last = &listing{began: began, done: make(chan struct{}), keys: keys}
		close(l.last.done)
	}
	return l
}

// since is every key of the workspace, active and revoked, from a listing
// that began at t or later (zero: any listing of the run). The slice is
// shared: do not change it.
func (l *listings) since(ctx context.Context, t time.Time) ([]client.APIKey, error) {
	l.mu.Lock()
	var mine *listing
	switch {
	case l.last != nil && !l.last.began.Before(t):
		mine = l.last
	case l.cur != nil && !l.cur.began.Before(t):
		mine = l.cur
	default:
		if l.next == nil {
			l.next = &listing{done: make(chan struct{})}
		}
		mine = l.next
		if !l.running {
			l.startLocked()
		}
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
	cur.began = time.Now()
	l.next, l.cur, l.running = nil, cur, true
	go func() {
		cur.keys, cur.err = l.api.ListKeys(l.ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: pageSize})
		close(cur.done)
		l.mu.Lock()
		if cur.err == nil {
			l.last = cur
		}
		l.cur, l.running = nil, false
		if l.next != nil {
			l.startLocked()
		}
		l.mu.Unlock()
	}()
}
