package rotate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
)

// absTarget makes an env-file target's path absolute against this run's
// working directory, so the journal names the file whichever directory the
// next run starts from (cron starts from $HOME).
func absTarget(target string) (string, error) {
	t, err := ParseTarget(target)
	if err != nil || t.Kind != TargetEnvFile || filepath.IsAbs(t.Arg) {
		return target, err
	}
	if t.Arg, err = filepath.Abs(t.Arg); err != nil {
		return "", fmt.Errorf("resolving the deploy target %s: %w", target, err)
	}
	return t.String(), nil
}

// checkTarget refuses, before step 1 creates anything, a deploy target that
// step 2 or 4 would fail on: an env file that is missing, a symlink, or not
// writable; or an env file other than the one the rotation recorded, which
// would get the new key while the automation reading the recorded one kept
// only the old key, revoked at step 5.
func (s *session) checkTarget() error {
	t, err := ParseTarget(s.target())
	if err != nil || t.Kind != TargetEnvFile || s.j.Step.Reached(StepFinalized) {
		return err
	}
	if rec, _ := ParseTarget(s.j.Target); rec.Kind == TargetEnvFile && filepath.Clean(rec.Arg) != filepath.Clean(t.Arg) {
		return usageErrorf("the rotation of %s deploys to %s, as its first run recorded, but this run's --to resolves to %s: nothing was changed. "+
			"Pass --to env-file:%s (or no --to: the rotation keeps its target), or run from the directory the first run started in",
			s.j.Old.Prefix, rec.Arg, t.Arg, rec.Arg)
	}
	_, err = EnvFile{Path: t.Arg}.read()
	return err
}

// ensureDeployed is step 2. Deploying the same key to the same target again
// is a no-op.
func (s *session) ensureDeployed(ctx context.Context) error {
	j := s.j
	target := s.target()
	if j.Deployed && target == j.Target {
		return nil
	}
	t, err := ParseTarget(target)
	if err != nil {
		return err
	}
	s.announce()
	if t.Kind == TargetNone {
		s.rep.Info(fmt.Sprintf("no deploy target: give the automation the new key (plana keys secret %s) next to the old one, trying the new one first", j.New.ID))
	} else {
		key, err := s.newPlaintext(ctx)
		if errors.Is(err, ErrPending) && j.Adopted && t.Kind != TargetEnvFile {
			// A target plana cannot read back: the automation's own calls
			// with the new key say its issuer deployed it.
			used, uerr := s.r.usedByOthers(ctx, j.New.ID)
			if uerr != nil {
				return uerr
			}
			if used {
				s.rep.Info(fmt.Sprintf("the new key %s is already in use: its issuer deployed it", j.New.Prefix))
				j.Target, j.Deployed = target, true
				return s.record(StepDeployed, "", t.Kind)
			}
		}
		if err != nil {
			return err
		}
		changed, err := deployTo(ctx, t, key, s.opts.SecretOut, s.opts.ExecTimeout)
		if err != nil {
			if j.PlaintextStored {
				return fmt.Errorf("%w\nThe new key %s is safe in the keyring and not deployed yet: fix the target, then run the same command again", err, j.New.Prefix)
			}
			return fmt.Errorf("%w\nThe new key %s was only in this run's memory (no keyring): the next run revokes it and issues another", err, j.New.Prefix)
		}
		if changed {
			s.rep.Info("deployed to " + t.String())
		}
	}
	j.Target, j.Deployed = target, true
	event := EventDeployed
	if t.Kind == TargetNone {
		event = "" // nothing was deployed by plana
	}
	return s.record(StepDeployed, event, t.Kind)
}
