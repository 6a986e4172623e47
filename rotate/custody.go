package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plana-cli/plana/rotate/target"
)

// Custody: between step 1 and step 4 the new key's plaintext is needed
// again (deploy, and finalize at targets that move it into place), and
// BOS never gives it back. It is in this run's memory, in the keyring of
// the machine that created the key, and in the targets that can be read
// back. Any machine that can reach one of those carries the rotation on;
// a rotation that would leave it nowhere but this run is not started.

// readable are this run's targets that can be read back.
func (s *session) readable() []target.Target { return s.readableTargets(s.targets()) }

// readableTargets are the targets of the list that can be read back.
func (s *session) readableTargets(targets []string) []target.Target {
	var out []target.Target
	for _, to := range targets {
		if t, err := s.open(to); err == nil && t.Readable() {
			out = append(out, t)
		}
	}
	return out
}

// keyToFinalize are the targets of the list whose finalize needs the
// plaintext and that cannot give it back.
func (s *session) keyToFinalize(targets []string) []target.Target {
	var out []target.Target
	for _, to := range targets {
		if t, err := s.open(to); err == nil && t.KeyToFinalize() && !t.Readable() {
			out = append(out, t)
		}
	}
	return out
}

// finishableElsewhere refuses, before anything is created, a rotation that
// only this run could finish: with no keyring here, the plaintext would
// live in this run and in targets that cannot give it back, and some of
// those need it again to finalize. The next run, here or anywhere, would
// find a key deployed that it can never finalize.
func (s *session) finishableElsewhere(noKeyring error) error {
	targets := s.targets()
	if len(s.readableTargets(targets)) > 0 {
		return nil
	}
	need := s.keyToFinalize(targets)
	if len(need) == 0 {
		return nil
	}
	var names []string
	for _, t := range need {
		names = append(names, t.String())
	}
	return usageErrorf("no working keyring here (%v), and no target that plana can read back: once this run ended, the new key's plaintext "+
		"would be only in %s, which cannot give it back and needs it again to finalize (step 4), so no later run, here or "+
		"on another machine, could finish the rotation. Nothing was created. Add a target plana reads back beside it "+
		"(--to k8s:NAMESPACE/NAME, aws-sm:SECRET_ID, aws-ssm:PATH, sops:PATH, pass:PATH or env-file:PATH), or use exec-ab:CMD, "+
		"whose finalize needs no key, for a store that cannot be read (GitHub Actions secrets: docs/targets.md), or run "+
		"where a keyring works", noKeyring, strings.Join(names, " and "))
}

// deployWindow is how long after its create a key's creator may still be
// deploying it: the race rule's wait, the check that it answers, and each
// target (an exec: command may take minutes, a rollout five).
const deployWindow = 15 * time.Minute

// HeldElsewhereError is a rotation this machine cannot finish: the new
// key's plaintext is where it cannot reach. Running again here cannot
// help, so it is a failure (exit 1), not a rotation pending; only while
// the key is fresh, its creator may still be deploying it, and Pending
// says that waiting helps.
type HeldElsewhereError struct {
	Msg     string
	Pending bool
}

func (e *HeldElsewhereError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrPending) true while the creator may still be
// deploying the key.
func (e *HeldElsewhereError) Is(target error) bool { return e.Pending && target == ErrPending }

// heldElsewhere is the answer when this machine needs a plaintext it
// cannot reach: where the plaintext is, and what lets the rotation go on.
func (s *session) heldElsewhere() error {
	j := s.j
	race := ""
	if s.lost != nil {
		race = fmt.Sprintf(" %s won the race (created first); this machine revoked its own successor %s before deploying it.", j.New.Prefix, s.lost.Prefix)
	}
	if age := s.now().Sub(j.NewCreatedAt); age < deployWindow {
		return &HeldElsewhereError{Pending: true, Msg: fmt.Sprintf("%v: the new key %s (%s) was created by %s %s ago, and only that machine holds its plaintext yet: "+
			"it is deploying it now, or stopped before it could.%s Run the same command again in a few minutes; if that machine is gone, "+
			"call the rotation off (plana keys rotate %s --abort) and start again",
			ErrPending, j.New.Name, j.New.Prefix, s.creator(), age.Round(time.Second), race, j.Old.ID)}
	}
	where := []string{"the keyring of the machine " + s.creator() + " created it on"}
	if j.NewHost != "" {
		where[0] = "the keyring of " + j.NewHost
	}
	var notThere []string
	for _, t := range s.readable() {
		notThere = append(notThere, t.String())
	}
	var writeOnly []string
	for _, to := range s.targets() {
		if t, err := s.open(to); err == nil && !t.Readable() {
			writeOnly = append(writeOnly, t.String())
		}
	}
	if len(writeOnly) > 0 {
		where = append(where, strings.Join(writeOnly, " and ")+", which plana cannot read back")
	}
	msg := fmt.Sprintf("this machine cannot finish the rotation of %s: the new key %s (%s) was created by %s on %s, and its plaintext is only in %s",
		j.Old.Prefix, j.New.Name, j.New.Prefix, s.creator(), j.NewCreatedAt.UTC().Format(time.DateOnly), strings.Join(where, ", and in "))
	if len(notThere) > 0 {
		msg += fmt.Sprintf("; %s does not hold it (%s, or %s once finalized)", strings.Join(notThere, " nor "), target.NewKeySlot, target.KeySlot)
	}
	return &HeldElsewhereError{Msg: fmt.Sprintf("%s.%s Waiting will not help: run plana keys rotate %s on that machine, or deploy it from there to a "+
		"target plana reads back; if that machine is gone, call the rotation off (plana keys rotate %s --abort) and start again",
		msg, race, j.Old.ID, j.Old.ID)}
}

// creator names who created the new key, for a person on another machine.
func (s *session) creator() string {
	if s.j.NewCreatedBy == "" {
		return "its issuer"
	}
	return s.j.NewCreatedBy
}

// deployedElsewhere says whether another machine deployed the new key to
// targets, when this one holds no plaintext to deploy it again: targets
// that can tell (a store read back, exec-ab's list) must all hold it, and
// when some cannot tell (exec:, stdout), the automation's own calls with
// the new key must show it in use.
func (s *session) deployedElsewhere(ctx context.Context, targets []string) (bool, error) {
	untold := false
	for _, to := range targets {
		t, err := s.open(to)
		if err != nil {
			return false, err
		}
		held, err := t.Holds(ctx, s.j.New.Prefix)
		switch {
		case errors.Is(err, target.ErrWriteOnly):
			untold = true
		case err != nil:
			return false, fmt.Errorf("asking %s whether it holds the new key %s: %w", t, s.j.New.Prefix, err)
		case !held:
			return false, nil
		}
	}
	if !untold {
		return true, nil
	}
	return s.r.usedByOthers(ctx, s.j.New.ID)
}

// canFinalizeHere says whether this machine can finalize every target
// without a plaintext it does not hold: one of them gives it back, or
// none needs it.
func (s *session) canFinalizeHere() bool {
	targets := s.j.targetNames()
	return len(s.readableTargets(targets)) > 0 || len(s.keyToFinalize(targets)) == 0
}

// rotationLine is the rotation's line that a store keeping notes beside its
// keys (pass:) gets under the key at finalize: which key was rotated to
// which, on what day, by whom, and why.
func (s *session) rotationLine() string {
	j := s.j
	if j.New == nil {
		return ""
	}
	line := fmt.Sprintf("Rotated %s (%s) to %s (%s) on %s by %s: %s",
		j.Old.Prefix, j.Old.Name, j.New.Prefix, j.New.Name, s.now().Format(time.DateOnly), s.actor.Email, j.Reason)
	return strings.Join(strings.Fields(line), " ")
}
