package rotate

import (
	"context"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// Abort calls the rotation of key off before its old key is revoked, from
// any machine: the new key leaves the env-file target, then is revoked and
// its plaintext deleted; the old key goes on working. After the revoke there
// is nothing to go back to: a revoked key cannot be re-enabled.
func (r *Rotator) Abort(ctx context.Context, key client.APIKey, opts Options) (*Result, error) {
	opts.hold = true
	return r.withSession(ctx, key, opts, func(s *session) (*Result, error) {
		j := s.j
		if _, err := s.allKeys(ctx, time.Time{}); err != nil {
			return nil, err
		}
		if s.old.Active() && !j.oldRevoked() {
			if err := s.reconcile(ctx); err != nil {
				return nil, err
			}
		}
		if !s.old.Active() || j.oldRevoked() {
			next := "issue a new key with plana keys create --like " + s.old.ID
			if j.New != nil {
				next = "finish the rotation instead: plana keys rotate " + s.old.ID + " (the new key " + j.New.Prefix + " stays)"
			}
			return s.result(), fmt.Errorf("the old key %s is already revoked, and a revoked key cannot be re-enabled: too late to call this rotation off; %s", s.old.Prefix, next)
		}
		if j.New == nil {
			return s.result(), fmt.Errorf("no rotation of %s is under way: nothing to call off", s.old.Prefix)
		}
		s.rep.Step("Calling the rotation off")
		nw := *j.New
		// Out of the automation first, so nothing picks it up once revoked.
		if err := s.withdrawTargets(ctx, nw); err != nil {
			return s.result(), err
		}
		if _, err := s.revokeKey(ctx, nw.ID); err != nil {
			return s.result(), fmt.Errorf("revoking the new key %s: %w (run the same command again)", nw.Prefix, err)
		}
		s.notify(notify.Aborted, func(e *notify.Event) { e.Reason = notify.Text(s.opts.Reason) })
		s.forget(nw)
		j.Abandoned = append(j.Abandoned, nw)
		j.reset()
		j.Reason = s.opts.Reason
		s.logFor(rotlog.EventAborted, nw, "")
		s.rep.Info(fmt.Sprintf("revoked the new key %s (%s); the old key %s goes on working", nw.Name, nw.Prefix, s.old.Prefix))
		now := s.now()
		dst, err := s.js.finish(j, now)
		if err != nil {
			return s.result(), err
		}
		s.res.Journal = dst
		res := s.result()
		res.Aborted = &nw
		return res, nil
	})
}

// withdrawTargets takes the new key nw out of every target: a store's
// PLANA_KEY_NEW is emptied, an exec: target is run with PLANA_STEP=abort
// (the key on its stdin when this machine holds it, else nothing, and its
// prefix in PLANA_KEY_PREFIX either way).
func (s *session) withdrawTargets(ctx context.Context, nw ref.Key) error {
	for _, to := range s.targets() {
		t, err := s.open(to)
		if err != nil {
			return err
		}
		k, _ := s.keys()
		note, err := t.Abort(ctx, k)
		if err != nil {
			return fmt.Errorf("taking the new key %s out of %s: %w (it is still active: run the same command again)", nw.Prefix, t, err)
		}
		if note != "" {
			s.rep.Info(note)
		}
	}
	return nil
}
