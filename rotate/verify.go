package rotate

import (
	"context"
	"errors"
)

// ensureVerified is step 3: the new key used, and (outside an emergency) the
// old one quiet for the quiet period.
func (s *session) ensureVerified(ctx context.Context) error {
	if err := s.needNew(); err != nil {
		return err
	}
	s.announce()
	q, err := s.quietPeriod(ctx)
	if err != nil {
		return err
	}
	g := newGate(s.r.API, s.j, q, !s.j.Emergency && !s.j.OldRevoked)
	g.feed = s.r.Feed
	defer g.close()
	rep, err := s.waitGate(ctx, g)
	s.res.Gate = &rep
	if err != nil {
		if serr := s.save(); serr != nil {
			return serr
		}
		return err
	}
	return s.record(StepVerified, EventVerified, "")
}

// verifyOldQuiet is step 3 with no rotation under way: only the old key's
// silence can be checked.
func (s *session) verifyOldQuiet(ctx context.Context) (*Result, error) {
	q, err := s.quietPeriod(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := s.waitGate(ctx, newGate(s.r.API, s.j, q, true))
	s.res.Gate = &rep
	return s.result(), err
}

// waitGate evaluates the gate every poll interval until it holds, the
// timeout passes (a *GateError) or ctx ends; once with NoWait.
func (s *session) waitGate(ctx context.Context, g *gate) (GateReport, error) {
	interval := s.opts.PollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	var rep GateReport
	last, lastOn := "", ""
	// In a bulk run, a rotation waiting on its gate gives its slot to
	// one that has work to do.
	err := waitOutsideSlot(ctx, func() error {
		return poll(ctx, interval, interval, s.opts.Timeout, func() (bool, error) {
			var err error
			if rep, err = g.eval(ctx); err != nil {
				return false, err
			}
			if rep.Passed {
				s.rep.Info(rep.Summary())
				return true, nil
			}
			if on := waitingOnKey(rep); on != lastOn {
				s.notifyWaiting(rep)
				lastOn = on
			}
			if s.opts.NoWait {
				return false, &GateError{Report: rep}
			}
			if sum := rep.Summary(); sum != last {
				s.rep.Waiting("waiting: " + sum)
				last = sum
			}
			if gw, ok := s.rep.(GateWatcher); ok {
				gw.GateChecked(rep)
			}
			return false, nil
		})
	})
	if st, ok := errors.AsType[*stoppedError](err); ok {
		if st.Cause == errDeadline {
			return rep, &GateError{Report: rep}
		}
		return rep, st.Cause
	}
	return rep, err
}
