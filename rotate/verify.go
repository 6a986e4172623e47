package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// ensureVerified is step 3: the new key used, and (outside an emergency) the
// old one quiet for the quiet period.
func (s *session) ensureVerified(ctx context.Context) error {
	if err := s.needNew(); err != nil {
		return err
	}
	s.announce()
	// The old key is already revoked: only the new key's use is waited
	// for, so no quiet period to resolve or announce.
	requireOldQuiet := !s.j.Emergency && !s.j.oldRevoked()
	var q time.Duration
	if requireOldQuiet {
		var err error
		if q, err = s.quietPeriod(ctx); err != nil {
			return err
		}
	}
	w := s.newGateWait(s.newGate(q, requireOldQuiet))
	var err error
	if s.opts.NoWait {
		// One look: no wait to give a slot back for.
		w.wait(ctx)
		err = w.err
	} else {
		err = s.r.wait(ctx, func(ctx context.Context) error { w.wait(ctx); return w.err })
	}
	s.res.Gate = &w.rep
	if err != nil {
		if serr := s.save(); serr != nil {
			return serr
		}
		return err
	}
	return s.record(Verified, rotlog.EventVerified, "")
}

// verifyOldQuiet is step 3 with no rotation under way: only the old key's
// silence can be checked.
func (s *session) verifyOldQuiet(ctx context.Context) (*Result, error) {
	q, err := s.quietPeriod(ctx)
	if err != nil {
		return nil, err
	}
	w := s.newGateWait(gate.New(s.r.API, s.j.gateConfig(q, true)))
	w.wait(ctx)
	s.res.Gate = &w.rep
	return s.result(), w.err
}

// gateWait is one wait on a gate: what its evaluations carry from one poll
// to the next, and how it ended.
type gateWait struct {
	s        *session
	g        *gate.Gate
	interval time.Duration
	end      time.Time // zero: no timeout
	news     waitNews
	lastOn   string
	rep      gate.Report
	err      error
}

func (s *session) newGateWait(g *gate.Gate) *gateWait {
	w := &gateWait{s: s, g: g, interval: s.opts.PollInterval}
	if w.interval <= 0 {
		w.interval = DefaultPollInterval
	}
	if s.opts.Timeout > 0 {
		w.end = time.Now().Add(s.opts.Timeout)
	}
	return w
}

// wait evaluates the gate every poll interval until it holds, the timeout
// passes (a *GateError) or ctx ends; once with NoWait; and records how it
// ended. On a pipe the wait says only what changed, and that it still
// waits now and then.
func (w *gateWait) wait(ctx context.Context) {
	err := poll(ctx, w.interval, w.interval, w.s.opts.Timeout, func() (bool, error) { return w.check(ctx) })
	if st, ok := errors.AsType[*stoppedError](err); ok {
		err = st.Cause
		if st.Cause == errDeadline {
			err = &GateError{Report: w.rep}
		}
	}
	w.err = err
}

// check evaluates the gate once and says what changed: true when it holds.
func (w *gateWait) check(ctx context.Context) (bool, error) {
	s := w.s
	var err error
	if w.rep, err = s.evalThroughOutage(ctx, w.g, w.interval, w.end); err != nil {
		return false, err
	}
	rep := w.rep
	if rep.Passed {
		s.rep.Info(rep.Summary())
		return true, nil
	}
	if on := waitingOnKey(rep); on != w.lastOn {
		s.notifyWaiting(rep)
		w.lastOn = on
	}
	if s.opts.NoWait {
		return false, &GateError{Report: rep}
	}
	if gw, ok := s.rep.(GateWatcher); ok {
		gw.GateChecked(rep)
	}
	if line := w.news.line(rep, time.Now()); line != "" {
		s.rep.Waiting(line)
	}
	return false, nil
}

// evalThroughOutage evaluates the gate, riding out BOS not answering: a
// transient failure is retried with backoff until the wait's end (zero: no
// end but ctx), with one warning per outage and a note when BOS is back. An
// outage still on at the end is ErrPending, with the command that resumes.
func (s *session) evalThroughOutage(ctx context.Context, g *gate.Gate, interval time.Duration, end time.Time) (gate.Report, error) {
	exp := backoff.NewExponentialBackOff()
	exp.InitialInterval = min(interval, time.Second)
	exp.MaxInterval = max(interval, exp.InitialInterval)
	opts := []backoff.RetryOption{backoff.WithBackOff(exp), backoff.WithMaxElapsedTime(0)}
	switch left := time.Until(end); {
	case s.opts.NoWait || (!end.IsZero() && left <= 0):
		opts = append(opts, backoff.WithMaxTries(1))
	case !end.IsZero():
		opts = append(opts, backoff.WithMaxElapsedTime(left))
	}
	var down time.Time
	rep, err := backoff.Retry(ctx, func() (gate.Report, error) {
		rep, err := g.Eval(ctx)
		if err == nil || !transient(ctx, err) {
			return rep, backoff.Permanent(err)
		}
		if down.IsZero() {
			down = time.Now()
			until := "until it answers (Ctrl-C stops; " + s.resumeCommand() + " resumes)"
			if !end.IsZero() {
				until = "until " + end.Local().Format(time.DateTime)
			}
			s.rep.Warn(fmt.Sprintf("BOS does not answer (%v): still waiting, trying again %s", err, until))
		}
		return rep, err
	}, opts...)
	switch {
	case err == nil && !down.IsZero():
		s.rep.Info(fmt.Sprintf("BOS answers again, after %s", duration.Approx(time.Since(down))))
	case err != nil && transient(ctx, err):
		return rep, fmt.Errorf("%w: BOS did not answer (%v); stopped waiting at step 3. Resume with: %s", ErrPending, err, s.resumeCommand())
	}
	return rep, err
}

// heartbeatEvery is the longest a wait on a pipe stays silent.
const heartbeatEvery = 10 * time.Minute

// waitNews picks the evaluations of the gate worth a line: the first, the
// new key's first use, a place the old key is used from that was not seen
// before; otherwise one at most every heartbeatEvery, so a 48 h wait logs
// what happened rather than every poll.
type waitNews struct {
	seen    map[[3]string]bool
	newUsed bool
	last    time.Time // when the last line went out; zero: none yet
}

func (n *waitNews) line(rep gate.Report, now time.Time) string {
	changed := n.last.IsZero() || rep.NewUsed != n.newUsed
	n.newUsed = rep.NewUsed
	if n.seen == nil {
		n.seen = map[[3]string]bool{}
	}
	for _, src := range rep.Sources {
		k := [3]string{src.SourceIP, src.UserAgent, src.Path}
		changed = changed || !n.seen[k]
		n.seen[k] = true
	}
	if !changed && now.Sub(n.last) < heartbeatEvery {
		return ""
	}
	n.last = now
	if changed {
		return "waiting: " + rep.Summary()
	}
	return "still waiting: " + rep.Summary()
}
