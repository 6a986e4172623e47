package rotate

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errParked stops a walk at a wait a fleet runs itself (Rotator.parkWaits).
var errParked = errors.New("rotation waiting")

// parkedError is a rotation of a fleet stopped at a wait (session.parked),
// with its session open. The fleet waits for it with no goroutine of its
// own between two looks (await): a goroutine parked inside the walk keeps
// the stack it had, and the collector halves a stack only while a quarter
// of it is used, so a hundred rotations waiting there kept 16 to 32 KB of
// stack each. A waiting rotation now costs only its state.
type parkedError struct{ s *session }

func (p *parkedError) Error() string { return errParked.Error() }
func (p *parkedError) Unwrap() error { return errParked }

// closeUnlessParked closes the session once its walk is over: err is the
// walk's, returned as a *parkedError when it parked.
func (s *session) closeUnlessParked(err error) error {
	if errors.Is(err, errParked) {
		return &parkedError{s: s}
	}
	s.close()
	return err
}

// parkedWait is a wait a fleet runs itself: step 3's (gateWait) and the
// race rule's after a create (settleWait).
type parkedWait interface {
	// next looks once: done when the wait is over (err says how it
	// failed), else how long until the next look.
	next(ctx context.Context) (done bool, after time.Duration, err error)
	// ended records how the wait ended, for the walk that resumes.
	ended(err error)
}

// await runs the parked wait with no goroutine between two looks (each
// runs on a timer's goroutine) and the rotation's slot given back. Then it
// takes a slot again, walks on from the row that parked, and hands the
// outcome to then (awaiting again if the walk parks again).
func (p *parkedError) await(ctx context.Context, slots *Slots, then func(*Result, error)) {
	a := &awaiter{p: p, ctx: ctx, slots: slots, then: then}
	slots.Release()
	// Ctrl-C ends the wait at once, not at the next look.
	a.stop = context.AfterFunc(ctx, func() {
		a.mu.Lock()
		t := a.timer
		a.mu.Unlock()
		if t != nil && t.Stop() {
			a.look()
		}
	})
	go a.look()
}

type awaiter struct {
	p     *parkedError
	ctx   context.Context
	slots *Slots
	then  func(*Result, error)
	stop  func() bool

	mu    sync.Mutex
	timer *time.Timer // the next look's
}

func (a *awaiter) look() {
	if err := a.ctx.Err(); err != nil {
		a.finish(err)
		return
	}
	done, after, err := a.p.s.parked.next(a.ctx)
	if done {
		a.finish(err)
		return
	}
	a.mu.Lock()
	a.timer = time.AfterFunc(after, a.look)
	t := a.timer
	a.mu.Unlock()
	// ctx may have ended after the AfterFunc above looked for a timer.
	if a.ctx.Err() != nil && t.Stop() {
		a.look()
	}
}

// finish ends the wait with err and walks on.
func (a *awaiter) finish(err error) {
	a.stop()
	s := a.p.s
	s.parked.ended(err)
	_ = a.slots.Acquire(context.WithoutCancel(a.ctx)) // fails only when its ctx ends
	res, err := s.walk(a.ctx, s.rest...)
	err = s.closeUnlessParked(err)
	if p, ok := errors.AsType[*parkedError](err); ok {
		p.await(a.ctx, a.slots, a.then)
		return
	}
	a.then(res, err)
}

// next checks the gate when the feed has read since the last check: a
// check waiting inside for the next read would hold a goroutine per
// rotation again.
func (w *gateWait) next(ctx context.Context) (bool, time.Duration, error) {
	if !w.end.IsZero() && !time.Now().Before(w.end) {
		return true, 0, &GateError{Report: w.rep}
	}
	if w.g.sub == nil || w.g.sub.Ready() {
		if done, err := w.check(ctx); done || err != nil {
			return true, 0, err
		}
	}
	if w.end.IsZero() {
		return false, w.interval, nil
	}
	return false, min(w.interval, time.Until(w.end)), nil
}

func (w *gateWait) ended(err error) { w.err = err }

// settleWait is the race rule's wait after a create (session.settle).
type settleWait struct {
	until time.Time
	err   error
}

func (w *settleWait) next(context.Context) (bool, time.Duration, error) {
	if d := time.Until(w.until); d > 0 {
		return false, d, nil
	}
	return true, 0, nil
}

func (w *settleWait) ended(err error) { w.err = err }
