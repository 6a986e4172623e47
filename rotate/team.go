package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

// The server is the source of truth and the journal a cache. The rows of the
// step table here bring the journal in line with what every machine sees:
// no machine creates a second successor, and machines that each created one
// at the same moment end with the one the race rule keeps.

// defaultSettleDelay is how long after its create a machine lists the
// successors again. A server stamps created_at when a create arrives and
// makes the key visible when it commits; a create stamped earlier than ours
// but committed later must be in the second listing, or two machines could
// each believe they won.
const defaultSettleDelay = 2 * time.Second

// errDone stops a walk with nothing left to do: the rotation was finished
// elsewhere.
var errDone = errors.New("rotation already finished")

// description is the successor's description, its lineage claim, that
// step 1 gives it. It names this machine when the plaintext goes into its
// keyring (a keyless run hands it only to the targets).
func (s *session) description() string {
	host := s.r.MachineName
	if s.keyless {
		host = ""
	}
	return lineage.Claim{OldPrefix: s.old.Prefix, OldName: s.old.Name, By: s.actor.Email, On: s.now(), Host: host,
		Reason: s.j.Reason, Emergency: s.j.Emergency}.Description()
}

// allKeys lists every key of the workspace, active and revoked, from a
// listing that began at since or later (zero: the run's), and takes the old
// key's state from it.
func (s *session) allKeys(ctx context.Context, since time.Time) ([]client.APIKey, error) {
	keys, err := s.r.listKeys(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("listing keys to find a rotation under way: %w", err)
	}
	if k, ok := keyByID(keys, s.old.ID); ok {
		s.old = k
	}
	return keys, nil
}

// reconcile runs before step 1. A successor already on the server is carried
// on, not duplicated, whichever machine made it, when the caller believes it
// (claims that are not believed are shown and ignored); an emergency carries
// none on. A successor of this journal that another machine's beat, or that
// was revoked elsewhere, gives way; an old key revoked elsewhere means the
// rotation is over.
func (s *session) reconcile(ctx context.Context) error {
	j := s.j
	if j.Pending != nil {
		// A create whose answer may be lost: step 1 finds it again by its
		// Idempotency-Key, and settle follows.
		return nil
	}
	keys, err := s.allKeys(ctx, time.Time{})
	if err != nil {
		return err
	}
	s.listed = keys
	succ := s.successors(keys)
	win, ok := lineage.Winner(succ)
	// A journal past step 3 walks on: the revoke may be its own, whose
	// answer was lost, and revoking again changes nothing.
	if !s.old.Active() && !j.oldRevoked() && !j.State.Reached(Verified) {
		if kept, found := lineage.NewFamily(keys, s.caller).Kept(s.old.ID); found {
			return s.rotatedElsewhere(ctx, kept, keys)
		}
		// Revoked with no successor: nothing to carry on, and nothing to
		// create a successor of.
		return fmt.Errorf("key %s (%s) is already revoked: nothing to rotate; a revoked key cannot be re-enabled, issue a new one with plana keys create --like %s", s.old.Name, s.old.Prefix, s.old.ID)
	}
	if j.New == nil {
		if j.Emergency {
			s.passOver(succ)
			return nil
		}
		if ok {
			return s.adopt(ctx, win)
		}
		return nil
	}
	if ok && win.ID == j.New.ID {
		return nil
	}
	mine, found := keyByID(keys, j.New.ID)
	if found && mine.Active() {
		if !ok {
			return nil
		}
		return s.yield(ctx, win)
	}
	s.rep.Warn(fmt.Sprintf("the new key %s of this rotation was revoked elsewhere (called off, or given up for another machine's)", j.New.Prefix))
	s.forget(*j.New)
	j.Abandoned = append(j.Abandoned, *j.New)
	j.reset()
	if j.Emergency {
		s.passOver(succ)
	} else if ok {
		return s.adopt(ctx, win)
	}
	return s.save()
}

// fromServer runs reconcile for a single step (keys deploy, verify,
// revoke) on a machine whose journal has no successor: a rotation started
// elsewhere is carried on. done says it was found finished.
func (s *session) fromServer(ctx context.Context) (done bool, err error) {
	if s.j.New != nil || s.j.Pending != nil {
		return false, nil
	}
	err = s.reconcile(ctx)
	if errors.Is(err, errDone) {
		return true, nil
	}
	return false, err
}

// rotatedElsewhere closes a rotation whose old key another machine revoked:
// this machine's targets, when one can be read back for the new key's
// plaintext, are left with the new key alone; the old plaintext leaves the
// keyring, and a journal of this machine goes to done/. A machine that took
// part in nothing writes nothing.
func (s *session) rotatedElsewhere(ctx context.Context, kept client.APIKey, keys []client.APIKey) error {
	j := s.j
	kr := ref.Of(kept)
	if j.New != nil && j.New.ID != kept.ID {
		if mine, ok := keyByID(keys, j.New.ID); ok && mine.Active() && !j.State.Reached(Deployed) {
			if err := s.yield(ctx, kept); err != nil {
				return err
			}
		}
	}
	hadJournal := j.State != NotStarted || j.New != nil
	if j.New == nil || j.New.ID != kept.ID {
		j.New, j.NewCreatedAt, j.NewCreatedBy, j.Adopted = &kr, kept.CreatedAt, kept.CreatedBy.Email, true
	}
	revokedAt := s.now()
	if s.old.RevokedAt != nil {
		revokedAt = *s.old.RevokedAt
	}
	j.at(Revoked, revokedAt)
	if hadJournal && j.State.Reached(Deployed) && !j.State.Reached(Finalized) && s.canFinalizeHere() {
		if err := s.finalize(ctx); err != nil {
			return err
		}
	}
	if err := s.checkRefused(ctx); err != nil {
		return err
	}
	by := "another machine"
	if s.old.RevokedBy != nil {
		by = s.old.RevokedBy.Email
	}
	j.advance(Done, s.now())
	s.res.AlreadyRotated = true
	if s.old.RevokedAt != nil {
		s.res.FinishedAt = *s.old.RevokedAt
	}
	if hadJournal {
		dst, err := s.js.finish(j, s.now())
		if err != nil {
			return err
		}
		s.res.Journal = dst
		s.log(rotlog.EventRotated, "finished elsewhere: the old key was revoked by "+by)
	} else {
		s.res.Journal = ""
	}
	return errDone
}

// settle applies the race rule after step 1 and before anyone is handed the
// new key: if another machine's successor wins, ours is revoked and the
// winner's rotation carried on.
func (s *session) settle(ctx context.Context) error {
	j := s.j
	if j.New == nil || j.Adopted || j.State.Reached(Deployed) {
		return nil
	}
	delay := s.r.SettleDelay
	if delay == 0 {
		delay = defaultSettleDelay
	}
	if wait := delay - s.now().Sub(j.NewCreatedAt); wait > 0 {
		s.rep.Waiting("checking no other machine created a successor at the same moment")
		err := s.r.wait(ctx, func(ctx context.Context) error {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		})
		if err != nil {
			return err
		}
	}
	// The race rule needs a listing that began after the create: every
	// successor stamped before ours is in it.
	keys, err := s.allKeys(ctx, time.Now())
	if err != nil {
		return err
	}
	win, ok := lineage.Winner(s.successors(keys))
	if !ok || win.ID == j.New.ID {
		return nil
	}
	return s.yield(ctx, win)
}

// yield gives this machine's successor up for the winner: revoked before it
// was ever deployed, its plaintext deleted.
func (s *session) yield(ctx context.Context, win client.APIKey) error {
	j := s.j
	mine := *j.New
	if j.State.Reached(Deployed) {
		to := s.j.targetNames()
		abort := "plana keys rotate " + j.Old.ID + " --abort"
		for _, t := range to {
			abort += " --to " + t
		}
		return fmt.Errorf("two successors of %s are active: %s, deployed from here to %s, and %s, which the race rule keeps (created first, by %s). "+
			"Call this rotation off here with %s, then run plana keys rotate %s again to carry on with %s",
			j.Old.Prefix, mine.Prefix, strings.Join(to, ", "), win.Prefix, win.CreatedBy.Email, abort, j.Old.ID, win.Prefix)
	}
	if _, err := s.revokeKey(ctx, mine.ID); err != nil {
		return fmt.Errorf("revoking %s, which lost the race to %s: %w", mine.Prefix, win.Prefix, err)
	}
	s.forget(mine)
	j.Abandoned = append(j.Abandoned, mine)
	j.reset()
	s.lost = &mine
	s.logFor(rotlog.EventAbandoned, mine, "lost the race to "+win.Prefix)
	s.rep.Info(fmt.Sprintf("another machine created %s (%s) first: revoked ours (%s), lost the race to %s", win.Name, win.Prefix, mine.Prefix, win.Prefix))
	return s.adopt(ctx, win)
}

// forget deletes a given-up successor's plaintext from this machine.
func (s *session) forget(kr ref.Key) {
	if s.plaintext != "" && client.PrefixOf(s.plaintext) == kr.Prefix {
		s.plaintext = ""
	}
	if err := s.r.Secrets.Delete(secret.KeyName(kr.ID)); err != nil && !errors.Is(err, secret.ErrNotFound) && !errors.Is(err, secret.ErrUnavailable) {
		s.rep.Warn(fmt.Sprintf("could not delete %s from the keyring: %v", kr.Prefix, err))
	}
}

// adopt makes the journal follow win, a successor this run did not create.
// Step 1 is done: the issuer checked that it answers before deploying it.
// Its plaintext is in this keyring only if this machine made it and lost
// its journal; else in the issuer's keyring and the target.
func (s *session) adopt(ctx context.Context, win client.APIKey) error {
	j := s.j
	kr := ref.Of(win)
	j.New, j.NewCreatedAt, j.NewCreatedBy, j.NewHost, j.Adopted = &kr, win.CreatedAt, win.CreatedBy.Email, "", true
	if l, ok := lineage.Parse(win.Description); ok {
		j.NewHost = l.Host
		if !j.Emergency {
			j.Reason = l.Reason
		}
	}
	_, err := s.r.Secrets.Get(secret.KeyName(win.ID))
	j.PlaintextStored = err == nil
	// The issuer's GET /v1/me calls are its check, not the automation.
	if j.OwnCalls, err = s.r.ownCalls(ctx, win.ID); err != nil {
		return err
	}
	s.rep.Info(fmt.Sprintf("carrying on the rotation under way: %s (%s), created by %s on %s", win.Name, win.Prefix, win.CreatedBy.Email, win.CreatedAt.UTC().Format(time.DateOnly)))
	return s.record(Checked, rotlog.EventJoined, "created by "+win.CreatedBy.Email)
}

// logFor logs event about kr, a successor other than the journal's.
func (s *session) logFor(event string, kr ref.Key, detail string) {
	saved := s.j.New
	s.j.New = &kr
	s.log(event, detail)
	s.j.New = saved
}

func keyByID(keys []client.APIKey, id string) (client.APIKey, bool) {
	for _, k := range keys {
		if k.ID == id {
			return k, true
		}
	}
	return client.APIKey{}, false
}

// plaintextInTarget finds the new key's plaintext in a target that can be
// read back, under PLANA_KEY_NEW or (once finalized) PLANA_KEY: only a
// well-formed key with the new key's prefix is taken. It is not tried
// against the server, where the call would count as the automation using
// the new key.
func (s *session) plaintextInTarget(ctx context.Context) (string, bool) {
	for _, t := range s.readable() {
		if v, ok, err := target.Find(ctx, t, s.j.New.Prefix); err == nil && ok {
			s.plaintext = v
			return v, true
		}
	}
	return "", false
}
