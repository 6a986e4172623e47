package rotate

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errParked stops a walk at step 3's wait, which a fleet runs itself
// (Rotator.parkWaits).
var errParked = errors.New("rotation waiting on its gate")

// parkedError is a rotation of a fleet stopped at its gate's wait, with its
// session open. The fleet waits for it with no goroutine of its own between
// two checks of the gate (await): a goroutine parked inside the walk keeps
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

// await runs the parked wait as gateWait.wait does (a check now, then one
// every poll interval until the gate holds, the timeout passes or ctx
// ends), each check on a timer's goroutine, with the rotation's slot given
// back meanwhile. Then it takes a slot again, walks on from step 3, and
// hands the outcome to then (awaiting again if the walk parks again).
func (p *parkedError) await(ctx context.Context, slots *Slots, then func(*Result, error)) {
	a := &awaiter{p: p, ctx: ctx, slots: slots, then: then}
	if t := p.s.opts.Timeout; t > 0 {
		a.end = time.Now().Add(t)
	}
	slots.Release()
	// Ctrl-C ends the wait at once, not at the next check.
	a.stop = context.AfterFunc(ctx, func() {
		a.mu.Lock()
		t := a.timer
		a.mu.Unlock()
		if t != nil && t.Stop() {
			a.check()
		}
	})
	go a.check()
}

type awaiter struct {
	p     *parkedError
	ctx   context.Context
	slots *Slots
	then  func(*Result, error)
	end   time.Time // zero: no timeout
	stop  func() bool

	mu    sync.Mutex
	timer *time.Timer // the next check's
}

func (a *awaiter) check() {
	w := a.p.s.parked
	if err := a.ctx.Err(); err != nil {
		a.finish(err)
		return
	}
	if !a.end.IsZero() && !time.Now().Before(a.end) {
		a.finish(&GateError{Report: w.rep})
		return
	}
	if done, err := w.check(a.ctx); done || err != nil {
		a.finish(err)
		return
	}
	next := w.interval
	if !a.end.IsZero() {
		next = min(next, time.Until(a.end))
	}
	a.mu.Lock()
	a.timer = time.AfterFunc(next, a.check)
	t := a.timer
	a.mu.Unlock()
	// ctx may have ended after the AfterFunc above looked for a timer.
	if a.ctx.Err() != nil && t.Stop() {
		a.check()
	}
}

// finish ends the wait with err and walks on.
func (a *awaiter) finish(err error) {
	a.stop()
	s := a.p.s
	s.parked.err = err
	_ = a.slots.Acquire(context.WithoutCancel(a.ctx)) // fails only when its ctx ends
	res, err := s.walk(a.ctx, s.rest...)
	err = s.closeUnlessParked(err)
	if p, ok := errors.AsType[*parkedError](err); ok {
		p.await(a.ctx, a.slots, a.then)
		return
	}
	a.then(res, err)
}
