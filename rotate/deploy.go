package rotate

import (
	"context"
	"fmt"
)

// checkTarget refuses, before step 1 creates anything, a deploy target that
// step 2 or 4 would fail on: an env file that is missing, a symlink, or not
// writable.
func (s *session) checkTarget() error {
	t, err := ParseTarget(s.target())
	if err != nil || t.Kind != TargetEnvFile || s.j.Step.Reached(StepFinalized) {
		return err
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
