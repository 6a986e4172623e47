package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/plana-cli/plana/client"
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
	// Even one look (--no-wait) waits for the shared read: a fleet gives
	// the slot back meanwhile, and every rotation reaches its gate first.
	err := s.r.wait(ctx, func(ctx context.Context) error { w.wait(ctx); return w.err })
	s.res.Gate = &w.rep
	if m := w.g.Memory(); m != nil {
		s.j.Gate = m
	}
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
	c := s.j.gateConfig(q, true)
	c.Interval = s.pollInterval()
	w := s.newGateWait(gate.New(s.r.API, c))
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
	// down is when BOS stopped answering, zero while it answers; downErr
	// is its last answer's error.
	down    time.Time
	downErr error
}

// pollInterval is how often a wait reads the log, and the least real time
// between the two looks that decide a gate.
func (s *session) pollInterval() time.Duration {
	if s.opts.PollInterval > 0 {
		return s.opts.PollInterval
	}
	return DefaultPollInterval
}

func (s *session) newGateWait(g *gate.Gate) *gateWait {
	w := &gateWait{s: s, g: g, interval: s.pollInterval()}
	if s.opts.Timeout > 0 {
		w.end = time.Now().Add(s.opts.Timeout)
	}
	return w
}

// wait evaluates the gate every poll interval until it passes, the timeout
// passes (a *GateError) or ctx ends; and records how it ended. With NoWait
// a look that does not see the gate hold ends it; one that does is
// confirmed by a second look a poll interval later, in this run: a run
// never passes the gate on one look, and never leans on another run's.
// BOS not answering is ridden out by the same polls until the timeout. On
// a pipe the wait says only what changed, and that it still waits now and
// then.
func (w *gateWait) wait(ctx context.Context) {
	err := gate.Poll(ctx, w.interval, w.interval, w.s.opts.Timeout, func() (bool, error) { return w.check(ctx) })
	if st, ok := errors.AsType[*gate.Stopped](err); ok {
		err = st.Cause
		switch {
		case st.Cause != gate.ErrDeadline:
		case !w.down.IsZero():
			err = w.outage()
		default:
			err = &GateError{Report: w.rep}
		}
	}
	w.err = err
}

// check evaluates the gate once and says what changed: true when it holds.
func (w *gateWait) check(ctx context.Context) (bool, error) {
	s := w.s
	rep, err := w.g.Eval(ctx)
	if err != nil && transient(ctx, err) {
		return false, w.unanswered(err)
	}
	if err != nil {
		return false, err
	}
	if !w.down.IsZero() {
		s.rep.Info(fmt.Sprintf("BOS answers again, after %s", duration.Approx(time.Since(w.down))))
		w.down, w.downErr = time.Time{}, nil
	}
	w.rep = rep
	if rep.Passed {
		s.rep.Info(rep.Summary())
		return true, nil
	}
	if on := waitingOnKey(rep); on != w.lastOn {
		s.notifyWaiting(rep)
		w.lastOn = on
	}
	if s.opts.NoWait && !rep.Holds {
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

// unanswered is an evaluation BOS did not answer: the wait goes on, with
// one warning per outage, unless it cannot wait (NoWait, its end passed).
// How long it goes on is said as a duration: --timeout runs on this
// process's clock, and a time of day on it would sit among lines in BOS's
// time, which may be hours or days away from this machine's.
func (w *gateWait) unanswered(err error) error {
	s := w.s
	if w.down.IsZero() {
		w.down = time.Now()
		until := "until it answers (Ctrl-C stops; " + s.resumeCommand() + " resumes)"
		if !w.end.IsZero() {
			left := max(time.Until(w.end), 0).Round(time.Second)
			until = fmt.Sprintf("for up to %s more (--timeout %s)", duration.Format(left), duration.Format(s.opts.Timeout))
		}
		s.rep.Warn(fmt.Sprintf("BOS does not answer (%v): still waiting, trying again %s", err, until))
	}
	w.downErr = err
	if s.opts.NoWait || (!w.end.IsZero() && !time.Now().Before(w.end)) {
		return w.outage()
	}
	return nil
}

// outage is the wait's end while BOS does not answer: pending, with the
// command that resumes.
func (w *gateWait) outage() error {
	return fmt.Errorf("%w: BOS did not answer (%v); stopped waiting at step 3. Resume with: %s", ErrPending, w.downErr, w.s.resumeCommand())
}

// heartbeatEvery is the longest a wait on a pipe stays silent.
const heartbeatEvery = 10 * time.Minute

// waitNews picks the evaluations of the gate worth a line: the first, the
// new key's first use, a place the old key is used from that was not seen
// before; otherwise one at most every heartbeatEvery, so a 48 h wait logs
// what happened rather than every poll.
type waitNews struct {
	seen          map[[3]string]bool
	newUsed, held bool
	last          time.Time // when the last line went out; zero: none yet
}

func (n *waitNews) line(rep gate.Report, now time.Time) string {
	changed := n.last.IsZero() || rep.NewUsed != n.newUsed || rep.Holds != n.held
	n.newUsed, n.held = rep.NewUsed, rep.Holds
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

// transient says err is BOS not answering for now, worth trying again: a
// connection refused, reset or timed out, a 5xx or a 429. ctx ending is
// not: that is the caller stopping.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if ae, ok := errors.AsType[*client.APIError](err); ok {
		return ae.Temporary()
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, context.DeadlineExceeded)
}
