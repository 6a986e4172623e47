package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/internal/secret"
)

// ensureRevoked is step 5: the gate checked once more, the old key revoked,
// then refused.
func (s *session) ensureRevoked(ctx context.Context) error {
	if s.j.Step.Reached(StepRevoked) {
		return s.finish(ctx)
	}
	s.announce()
	q, err := s.quietPeriod(ctx)
	if err != nil {
		return err
	}
	// Once more, right before the revoke: the old key may have been used
	// since step 3.
	rep, err := newGate(s.r.API, s.j, q, true).eval(ctx)
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
	if !s.j.Step.Reached(StepFinalized) {
		if err := s.confirm(fmt.Sprintf("Revoke the old key %s (%s)? It stops working within seconds.", s.j.Old.Name, s.j.Old.Prefix)); err != nil {
			return err
		}
	}
	if err := s.revoke(ctx, forced); err != nil {
		return err
	}
	return s.finish(ctx)
}

// revoke revokes the old key; detail, logged with it, says why when the
// gate did not hold.
func (s *session) revoke(ctx context.Context, detail string) error {
	if err := s.revokeOld(ctx); err != nil {
		return err
	}
	s.rep.Info(fmt.Sprintf("revoked %s (%s)", s.j.Old.Name, s.j.Old.Prefix))
	return s.record(StepRevoked, EventRevoked, detail)
}

// revokeOld revokes the old key at the server.
func (s *session) revokeOld(ctx context.Context) error {
	if _, err := s.r.API.RevokeKey(ctx, s.j.Old.ID); err != nil {
		return fmt.Errorf("revoking the old key %s: %w", s.j.Old.Prefix, err)
	}
	s.j.OldRevoked = true
	return nil
}

// finish checks the old key is refused, forgets its plaintext, and closes
// the journal.
func (s *session) finish(ctx context.Context) error {
	if err := s.checkRefused(ctx); err != nil {
		return err
	}
	now := s.now()
	s.j.advance(StepDone, now)
	dst, err := s.js.finish(s.j, now)
	if err != nil {
		return err
	}
	s.res.Journal = dst
	s.log(EventRotated, "")
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
		err = poll(ctx2, 250*time.Millisecond, 0, 0, func() (bool, error) {
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
