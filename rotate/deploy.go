package rotate

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// checkTarget refuses, before step 1 creates anything, a deploy target that
// step 2 or 4 would fail on: an env file that is missing, a symlink, or not
// writable.
func (s *session) checkTarget() error {
	for _, target := range s.targets() {
		t, err := ParseTarget(target)
		if err != nil {
			return err
		}
		if t.Kind != TargetEnvFile || s.j.Step.Reached(StepFinalized) {
			continue
		}
		if _, err := (EnvFile{Path: t.Arg}).read(); err != nil {
			return err
		}
	}
	return nil
}

// ensureDeployed is step 2, target by target. Deploying the same key to the
// same targets again is a no-op; a run after one failed deploys only to the
// targets not done.
func (s *session) ensureDeployed(ctx context.Context) error {
	j := s.j
	targets := s.targets()
	if j.Deployed && slices.Equal(targets, s.journalTargets()) && allDeployed(j.Targets) {
		return nil
	}
	j.setTargets(targets)
	s.announce()
	if len(targets) == 0 {
		s.rep.Info(fmt.Sprintf("no deploy target: give the automation the new key (plana keys secret %s) next to the old one, trying the new one first", j.New.ID))
	} else if err := s.deployTargets(ctx); err != nil {
		if j.PlaintextStored {
			return fmt.Errorf("%w\nThe new key %s is safe in the keyring and not deployed yet: fix the target, then run the same command again", err, j.New.Prefix)
		}
		return fmt.Errorf("%w\nThe new key %s was only in this run's memory (no keyring): the next run revokes it and issues another", err, j.New.Prefix)
	}
	j.Deployed = true
	event := EventDeployed
	if len(targets) == 0 {
		event = "" // nothing was deployed by plana
	}
	var kinds []string
	for _, t := range targets {
		pt, _ := ParseTarget(t)
		kinds = append(kinds, pt.Kind)
	}
	return s.record(StepDeployed, event, strings.Join(kinds, ","))
}

// journalTargets are the targets the journal records.
func (s *session) journalTargets() []string {
	var out []string
	for _, t := range s.j.targetStates() {
		out = append(out, t.Target)
	}
	return out
}

func allDeployed(ts []TargetState) bool {
	for _, t := range ts {
		if !t.Deployed {
			return false
		}
	}
	return true
}
