package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// ensureRevoked is step 5: the gate checked once more, the old key revoked,
// then refused.
func (s *session) ensureRevoked(ctx context.Context) error {
	if s.j.State.Reached(Revoked) {
		return s.finish(ctx)
	}
	// Revoked by a forced revoke that could not finalize; step 4 done since.
	if s.j.oldRevoked() && s.j.State.Reached(Finalized) {
		if err := s.record(Revoked, "", ""); err != nil {
			return err
		}
		return s.finish(ctx)
	}
	s.announce()
	q, err := s.quietPeriod(ctx)
	if err != nil {
		return err
	}
	// Once more, right before the revoke: the old key may have been used
	// since step 3.
	rep, err := s.lastLooks(ctx, q)
	s.res.Gate = &rep
	if err != nil {
		return err
	}
	forced := ""
	if !rep.Passed {
		if !s.opts.Force {
			return &GateError{Report: rep}
		}
		s.rep.Warn("REVOKING ALTHOUGH THE GATE DOES NOT HOLD (--force): " + rep.Summary())
		// The log must show the revoke was not earned by the gate.
		forced = "forced (--force): " + rep.Summary()
	} else {
		s.rep.Info("checked again just now: " + rep.Summary())
	}
	if !s.j.State.Reached(Finalized) {
		if err := s.confirm(fmt.Sprintf("Revoke the old key %s (%s)? It stops working within seconds.", s.j.Old.Name, s.j.Old.Prefix)); err != nil {
			return err
		}
		// Step 4 before step 5, even asked for by name: a revoked key left
		// in the target is one the automation may still try first.
		if err := s.finalizeBeforeRevoke(ctx); err != nil {
			if !s.opts.Force {
				return err
			}
			return s.revokeOpen(ctx, forced, err)
		}
	}
	if err := s.revoke(ctx, forced); err != nil {
		return err
	}
	if err := s.finish(ctx); err != nil {
		return err
	}
	s.watchAfterRevoke(ctx)
	return nil
}

// lastLooks is step 5's check right before the revoke: looks at the gate,
// each reading what the log holds from a moment after it was asked, until
// one sees it not hold, or it passes on two looks a poll interval apart
// (step 3's of this run count when nothing failed since: then one look).
func (s *session) lastLooks(ctx context.Context, q time.Duration) (gate.Report, error) {
	g := s.lastCheck(q)
	var rep gate.Report
	interval := s.pollInterval()
	err := gate.Poll(ctx, interval, interval, 0, func() (bool, error) {
		var err error
		if rep, err = g.Eval(ctx); err != nil || rep.Passed || !rep.Holds {
			return true, err
		}
		s.rep.Waiting(fmt.Sprintf("the gate holds at this look; looking again in %s before the revoke", duration.Approx(interval)))
		return false, nil
	})
	if st, ok := errors.AsType[*gate.Stopped](err); ok {
		err = st.Cause
	}
	return rep, err
}

// lastCheck is the gate step 5 evaluates once more right before the revoke:
// step 3's of this run when it waited for the same thing, reading from a
// moment after this one on, else a gate of its own.
func (s *session) lastCheck(q time.Duration) *gate.Gate {
	g := s.gate
	if g != nil {
		if gq, oldQuiet := g.Holds(); !oldQuiet || gq != q {
			g = nil
		}
	}
	if g == nil {
		g = s.newGate(q, true)
	}
	g.Current()
	return g
}

// newGate is a gate on the session's rotation, reading through the
// process's feed when there is one, and the session's gate until the next
// or the session's end.
func (s *session) newGate(q time.Duration, requireOldQuiet bool) *gate.Gate {
	if s.gate != nil {
		s.gate.Close()
	}
	c := s.j.gateConfig(q, requireOldQuiet)
	c.Feed, c.Interval = s.r.Feed, s.pollInterval()
	s.gate = gate.New(s.r.API, c)
	return s.gate
}

// gateConfig is a gate on the journal's keys. The uses it sees stamped in
// the server's future are the journal's, kept across runs.
func (j *Journal) gateConfig(q time.Duration, requireOldQuiet bool) gate.Config {
	if j.FutureUses == nil {
		j.FutureUses = map[string]time.Time{}
	}
	return gate.Config{Old: j.Old, New: j.New, NewCreatedAt: j.NewCreatedAt, OwnCalls: j.OwnCalls,
		Future: j.FutureUses, Quiet: q, OldQuiet: requireOldQuiet, Memory: j.Gate}
}

// watchAfterRevoke is step 5's last look: a place the old key is still
// configured now gets 401, and the execution log says where it is. It
// watches for opts.WatchAfterRevoke, or until ctx ends (Ctrl-C), and
// reports each new source at once and all of them at the end.
func (s *session) watchAfterRevoke(ctx context.Context) {
	d := s.opts.WatchAfterRevoke
	if d <= 0 {
		return
	}
	since := s.j.Times[Revoked]
	poll := min(s.pollInterval(), watchPoll)
	s.rep.Waiting(fmt.Sprintf("watching for %s for calls that still present the old key %s (Ctrl-C to stop)", duration.Approx(d), s.j.Old.Prefix))
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := gate.NewTally()
	seen := map[[3]string]bool{}
	err := gate.WatchRefused(wctx, s.r.API, s.j.Old.ID, since, poll, func(e client.ExecutionLogEntry) error {
		t.Add(e)
		if src := [3]string{e.SourceIP, e.UserAgent, e.Path}; !seen[src] {
			seen[src] = true
			s.rep.Warn(fmt.Sprintf("refused call with the old key from %s (%s) %s %s: that place still has it", e.SourceIP, e.UserAgent, e.Method, e.Path))
		}
		return nil
	})
	s.res.Refused = t.Sources()
	switch {
	case err != nil:
		s.rep.Warn("watching for refused calls: " + err.Error())
	case t.Total == 0:
		s.rep.Info(fmt.Sprintf("no call presented the old key %s after its revoke", s.j.Old.Prefix))
	default:
		s.rep.Warn(fmt.Sprintf("%s with the old key %s after its revoke, from %s: see plana keys show %s, or follow them with plana keys watch %s",
			plural(t.Total, "refused call"), s.j.Old.Prefix, plural(len(seen), "place"), s.j.Old.ID, s.j.Old.ID))
	}
}

// watchPoll is how often the watch after the revoke reads the log, at most.
const watchPoll = 2 * time.Second

// finalizeBeforeRevoke is step 4 of a rotation whose successor exists.
func (s *session) finalizeBeforeRevoke(ctx context.Context) error {
	switch {
	case s.j.New == nil:
		return nil // a key revoked with no rotation under way
	case len(s.targets()) == 0 && s.j.Adopted:
		// Carried on from another machine, which holds the target: the
		// gate, checked just now, is the evidence that the automation moved.
		return nil
	case !s.j.deployed():
		return fmt.Errorf("the new key %s is not deployed yet (step 2)", s.j.New.Prefix)
	}
	return s.finalize(ctx)
}

// revokeOpen is a forced revoke whose targets could not be finalized
// (why): the old key goes, as forced, and the rotation stays open at its
// step, so deploying and finalizing still work and the rotation can end.
func (s *session) revokeOpen(ctx context.Context, detail string, why error) error {
	if err := s.revokeOld(ctx); err != nil {
		return err
	}
	if err := s.save(); err != nil {
		return err
	}
	s.log(rotlog.EventRevoked, detail)
	s.rep.Warn(fmt.Sprintf("revoked %s (%s) (--force), but its targets were not finalized: %v", s.j.Old.Name, s.j.Old.Prefix, why))
	next := fmt.Sprintf("plana keys deploy %s --finalize", s.j.Old.ID)
	if !s.j.deployed() {
		next = fmt.Sprintf("plana keys deploy %s --to TARGET, then %s", s.j.Old.ID, next)
	}
	return fmt.Errorf("%w: the old key %s is revoked, and the rotation stays open at step %q until its targets hold only the new key %s: run %s, then plana keys rotate %s to close it",
		ErrPending, s.j.Old.Prefix, s.j.State, s.j.New.Prefix, next, s.j.Old.ID)
}

// revoke revokes the old key; detail, logged with it, says why when the
// gate did not hold.
func (s *session) revoke(ctx context.Context, detail string) error {
	if err := s.revokeOld(ctx); err != nil {
		return err
	}
	s.rep.Info(fmt.Sprintf("revoked %s (%s)", s.j.Old.Name, s.j.Old.Prefix))
	return s.record(Revoked, rotlog.EventRevoked, detail)
}

// revokeOld revokes the old key at the server.
func (s *session) revokeOld(ctx context.Context) error {
	if _, err := s.revokeKey(ctx, s.j.Old.ID); err != nil {
		return fmt.Errorf("revoking the old key %s: %w", s.j.Old.Prefix, err)
	}
	s.j.at(Revoked, s.now())
	return nil
}

// finish checks the old key is refused, forgets its plaintext, and closes
// the journal.
func (s *session) finish(ctx context.Context) error {
	if err := s.checkRefused(ctx); err != nil {
		return err
	}
	now := s.now()
	s.j.advance(Done, now)
	dst, err := s.js.finish(s.j, now)
	if err != nil {
		return err
	}
	s.res.Journal = dst
	s.log(rotlog.EventRotated, "")
	return nil
}

// alreadyRotated is the record of the old key's finished rotation: its
// finished journal, else the log's entry of its revoke with the successor
// named; nil when neither knows one.
func (s *session) alreadyRotated() *Result {
	res := &Result{Old: s.j.Old, State: Done, Done: true, AlreadyRotated: true}
	if j := s.js.lastDone(s.old.ID); j != nil {
		res.New, res.FinishedAt, res.Emergency, res.Reason, res.Targets = j.New, j.Times[Done], j.Emergency, j.Reason, j.Targets
		return res
	}
	es, _ := rotlog.Open(s.r.StateDir).Entries()
	for i := len(es) - 1; i >= 0; i-- {
		if e := es[i]; e.Old.ID == s.old.ID && e.New != nil && (e.Event == rotlog.EventRotated || e.Event == rotlog.EventRevoked) {
			res.New, res.FinishedAt, res.Reason = e.New, e.Time, e.Reason
			return res
		}
	}
	return nil
}

func (s *session) checkRefused(ctx context.Context) error {
	name := secret.KeyName(s.j.Old.ID)
	old, err := s.r.Secrets.Get(name)
	if errors.Is(err, secret.ErrNotFound) || errors.Is(err, secret.ErrUnavailable) {
		return nil
	}
	if err != nil {
		return err
	}
	if s.r.ClientFor != nil {
		c, err := s.r.ClientFor(old)
		if err != nil {
			return err
		}
		ctx2, cancel := context.WithTimeout(ctx, checkRevokedTimeout)
		defer cancel()
		err = gate.Poll(ctx2, 250*time.Millisecond, 0, 0, func() (bool, error) {
			_, err := c.Me(ctx2)
			return errors.Is(err, client.ErrUnauthenticated), nil
		})
		if err != nil {
			return fmt.Errorf("the old key %s still answers %s after it was revoked: check the BOS status page and revoke it again with plana keys revoke %s", s.j.Old.Prefix, checkRevokedTimeout, s.j.Old.ID)
		}
		s.notify(notify.RefusedAfterRevoke, nil)
	}
	if err := s.r.Secrets.Delete(name); err != nil && !errors.Is(err, secret.ErrNotFound) {
		return fmt.Errorf("deleting the old key's plaintext from the keyring: %w", err)
	}
	return nil
}

// plural is "1 place", "2 places".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// revokeAlone is keys revoke of a key that no rotation replaces: step 5 has
// nothing to finish, so it refuses, and plana goes on as if any claimant
// did not exist. With --force it revokes the key as one nobody should use
// (a successor an emergency passed over, a claimant): refused afterwards,
// its plaintext deleted from this keyring, the revoke logged. No journal:
// there is no rotation to resume.
func (s *session) revokeAlone(ctx context.Context) error {
	// reconcile has answered for a revoked key: rotated elsewhere, or
	// nothing to do.
	k := s.old
	if !s.opts.Force {
		return fmt.Errorf("no rotation of %s (%s) is under way: nothing was revoked. Step 5 revokes an old key once a successor has taken its place; "+
			"start one with plana keys rotate %s, or, to revoke it with nothing to replace it (a key nobody should use), run %s",
			k.Name, k.Prefix, k.ID, strings.TrimSuffix(revokeCommand(k.ID), " --yes"))
	}
	s.rep.Warn(fmt.Sprintf("REVOKING %s (%s) WITH NO SUCCESSOR (--force): whatever still uses it fails from now on", k.Name, k.Prefix))
	if err := s.confirm(fmt.Sprintf("Revoke %s (%s)? Nothing replaces it, and it stops working within seconds.", k.Name, k.Prefix)); err != nil {
		return err
	}
	if err := s.revokeOld(ctx); err != nil {
		return err
	}
	s.rep.Info(fmt.Sprintf("revoked %s (%s)", k.Name, k.Prefix))
	s.log(rotlog.EventRevoked, "forced (--force): no successor replaces it")
	if err := s.checkRefused(ctx); err != nil {
		return err
	}
	s.j.advance(Done, s.now())
	return nil
}
