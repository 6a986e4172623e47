package gate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/plana-cli/plana/client"
)

// Read is one read of the feed: the log since the cursor, a catch-up read
// for each key newly followed whose past the cursor does not cover, and the
// state of the keys that want it; then every subscriber gets its batch.
func (f *Feed) Read(ctx context.Context) {
	p := f.plan()
	f.handOut(p, f.fetch(ctx, p))
}

// readPlan is what one read asks the server for, decided under the lock
// from what the subscribers want.
type readPlan struct {
	subs     []*subscription
	started  time.Time            // when the read began, on this clock
	catchUp  map[string]time.Time // keys newly followed: from when
	limits   map[string]int       // per key: the largest Limit asked; 0 wins
	shared   map[string]bool      // keys newly followed whose past is read together
	stateIDs map[string]bool      // keys whose state is wanted
	wanted   map[string]bool      // every followed key
	// stateSince is how old a listing of the keys may be: begun at the
	// previous read at the earliest.
	stateSince time.Time
	// from is where the shared read starts (the cursor less feedOverlap);
	// zero: nobody follows a key yet.
	from      time.Time
	listPages int
}

// fetched is what the server answered to a plan.
type fetched struct {
	all          []client.ExecutionLogEntry // the followed keys' calls in the shared read
	othersLatest time.Time                  // the latest call of any other key
	own          map[string][]client.ExecutionLogEntry
	keys         map[string]client.APIKey
	listPages    int
	now, began   time.Time // the server's time when the read ended, began
	err          error
}

// plan gathers what the subscribers want and where the shared read starts.
func (f *Feed) plan() readPlan {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := readPlan{started: time.Now(), catchUp: map[string]time.Time{}, limits: map[string]int{}, shared: map[string]bool{},
		stateIDs: map[string]bool{}, wanted: map[string]bool{}, listPages: f.listPages, stateSince: f.lastRead}
	for s := range f.subs {
		p.subs = append(p.subs, s)
		for id := range s.fresh {
			w := s.wants[id]
			if t, ok := p.catchUp[id]; !ok || w.Since.Before(t) {
				p.catchUp[id] = w.Since
			}
			if l, ok := p.limits[id]; !ok || (l != 0 && (w.Limit == 0 || w.Limit > l)) {
				p.limits[id] = w.Limit
			}
			// One subscriber's look-back makes the key's past a read of
			// its own.
			if s, ok := p.shared[id]; !ok || s {
				p.shared[id] = w.Shared
			}
		}
		for id, w := range s.wants {
			p.wanted[id] = true
			if w.State {
				p.stateIDs[id] = true
			}
		}
	}
	if f.cursor.IsZero() {
		// The first read starts at the earliest key's start within
		// feedHorizon, or a window asked to be shared: a successor's calls
		// since its creation come with it. A key whose past is older (a
		// look-back over weeks) gets a read of its own rather than the
		// whole workspace's log.
		now, ok := f.api.ServerNow()
		for id, since := range p.catchUp {
			if ok && since.Before(now.Add(-feedHorizon)) && !p.shared[id] {
				continue
			}
			if f.cursor.IsZero() || since.Before(f.cursor) {
				f.cursor = since
			}
		}
		if f.cursor.IsZero() && len(p.catchUp) > 0 && ok {
			f.cursor = now
		}
	}
	if f.cursor.IsZero() {
		// Nobody follows a key yet: there is no start to read from, and
		// nothing to hand out.
		p.subs = nil
		return p
	}
	p.from = f.cursor.Add(-feedOverlap)
	f.lastRead = p.started
	return p
}

// fetch makes p's requests: the shared read of the whole log since p.from
// (the calls of keys nobody follows are read, move the cursor, and are let
// go page by page), a catch-up read for each key whose past lies before
// it, and the followed keys' state.
func (f *Feed) fetch(ctx context.Context, p readPlan) fetched {
	got := fetched{listPages: p.listPages, own: map[string][]client.ExecutionLogEntry{}}
	if p.from.IsZero() {
		return got
	}
	got.began, _ = f.api.ServerNow()
	got.err = f.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{Since: p.from, PageSize: pageSize}, func(es []client.ExecutionLogEntry) error {
		now, ok := f.api.ServerNow()
		for _, e := range es {
			switch {
			case p.wanted[e.KeyID]:
				got.all = append(got.all, e)
			case ok && e.At.After(got.othersLatest) && !isFuture(e.At, now):
				got.othersLatest = e.At
			}
		}
		return nil
	})
	if got.err == nil {
		got.err = f.catchUp(ctx, p, got.own)
	}
	switch {
	case got.err != nil || len(p.stateIDs) == 0:
	case f.Keys != nil:
		got.keys, got.err = f.listed(ctx, p)
	default:
		got.keys, got.listPages, got.err = f.readKeys(ctx, p.stateIDs, p.listPages)
	}
	now, ok := f.api.ServerNow()
	got.now = now
	if got.began.IsZero() {
		got.began = now
	}
	if got.err == nil && !ok {
		got.err = errNoServerTime
	}
	if got.err != nil {
		got.err = fmt.Errorf("reading the execution log: %w", got.err)
	}
	return got
}

// catchUp reads the past of the keys newly followed that lies before the
// shared read, into own: the windows asked to be shared in one read of the
// whole log, each look-back in a read of its own.
func (f *Feed) catchUp(ctx context.Context, p readPlan, own map[string][]client.ExecutionLogEntry) error {
	var from time.Time
	for id, since := range p.catchUp {
		switch {
		case !since.Before(p.from):
		case p.shared[id]:
			if from.IsZero() || since.Before(from) {
				from = since
			}
		default:
			err := f.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: id, Since: since, Until: p.from, PageSize: pageSize, Limit: p.limits[id]},
				func(es []client.ExecutionLogEntry) error {
					own[id] = append(own[id], es...)
					return nil
				})
			if err != nil {
				return err
			}
		}
	}
	if from.IsZero() {
		return nil
	}
	return f.api.ExecutionLogPages(ctx, client.ExecutionLogOptions{Since: from, Until: p.from, PageSize: pageSize}, func(es []client.ExecutionLogEntry) error {
		for _, e := range es {
			if since, ok := p.catchUp[e.KeyID]; ok && p.shared[e.KeyID] && !e.At.Before(since) {
				own[e.KeyID] = append(own[e.KeyID], e)
			}
		}
		return nil
	})
}

// handOut moves the cursor past what got brought and gives each
// subscriber of p its batch: its keys' calls new to it, oldest first, and
// their state.
func (f *Feed) handOut(p readPlan, got fetched) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listPages = got.listPages
	var fresh []client.ExecutionLogEntry
	if got.err == nil && !p.from.IsZero() {
		fresh = f.advance(got)
	}
	for _, s := range p.subs {
		if !f.subs[s] {
			continue // closed meanwhile
		}
		b := &s.pending
		b.Now, b.Began, b.Err, b.started = got.now, got.began, got.err, p.started
		if got.err == nil {
			s.take(b, got, fresh)
		}
		s.has = true
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
}

// advance moves the cursor past the calls got brought and returns those
// not handed out before (reads overlap by feedOverlap), oldest first.
// f.mu is held.
func (f *Feed) advance(got fetched) []client.ExecutionLogEntry {
	if got.othersLatest.After(f.cursor) {
		f.cursor = got.othersLatest
	}
	var fresh []client.ExecutionLogEntry
	for _, e := range got.all {
		if _, dup := f.recent[e.ID]; dup {
			continue
		}
		fresh = append(fresh, e)
		// A stamp ahead of the server's present must not move the cursor
		// past the calls made meanwhile.
		if e.At.After(f.cursor) && !isFuture(e.At, got.now) {
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
	return fresh
}

// take adds to b what got brought s: a key followed anew gets all this
// read saw of it (earlier reads, before it was followed, may have seen
// some already), the others only what is fresh. f.mu is held.
func (s *subscription) take(b *batch, got fetched, fresh []client.ExecutionLogEntry) {
	for id := range s.fresh {
		b.Entries = append(b.Entries, got.own[id]...)
	}
	for _, e := range got.all {
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
		if k, ok := got.keys[id]; ok && w.State {
			if b.Keys == nil {
				b.Keys = map[string]client.APIKey{}
			}
			b.Keys[id] = k
		}
	}
	clear(s.fresh)
}
