package rotate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

// checkTarget refuses, before step 1 creates anything, a deploy target that
// step 2 or 4 would fail on: an env file that is missing, a symlink, or not
// writable; a store that cannot be read with this machine's credentials;
// an exec-ab: command that cannot list its slots. (One other than those
// the rotation recorded never gets here: settingsOf refuses it.)
func (s *session) checkTarget(ctx context.Context) error {
	for _, to := range s.targets() {
		if s.j.State.Reached(Finalized) {
			continue
		}
		tg, err := s.open(to)
		if err != nil {
			return err
		}
		k, _ := s.keys()
		err = tg.Check(ctx, k)
		var other *target.OtherKeyError
		if errors.As(err, &other) && s.j.New == nil {
			if ok, lerr := s.successorOnServer(ctx, other.Prefix); lerr != nil || ok {
				err = lerr
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// successorOnServer says whether prefix is the old key's successor on the
// server, as the caller believes it (under way, or kept by a rotation
// finished elsewhere), which a
// machine that knows of no successor yet finds deployed: the server row
// carries that rotation on, or ends it as already rotated.
func (s *session) successorOnServer(ctx context.Context, prefix string) (bool, error) {
	keys, err := s.allKeys(ctx, time.Time{})
	if err != nil {
		return false, err
	}
	if kept, ok := lineage.NewFamily(keys, s.caller).Kept(s.old.ID); ok && kept.Prefix == prefix {
		return true, nil
	}
	// Only a successor the caller believes: a claimant's key in the file
	// is another's file.
	succ, _ := lineage.Successors(s.old, keys, s.caller)
	for _, k := range succ {
		if k.Prefix == prefix {
			return true, nil
		}
	}
	return false, nil
}

// ensureDeployed is step 2, target by target. Deploying the same key to the
// same targets again is a no-op; a run after one failed deploys only to the
// targets not done.
func (s *session) ensureDeployed(ctx context.Context) error {
	j := s.j
	targets := s.targets()
	if j.deployed() && slices.Equal(targets, j.targetNames()) {
		return nil
	}
	j.setTargets(targets)
	s.announce()
	if done, err := s.deployedByIssuer(ctx, targets); done || err != nil {
		return err
	}
	if len(targets) == 0 {
		s.rep.Info(fmt.Sprintf("no deploy target: give the automation the new key (plana keys secret %s) next to the old one, trying the new one first", j.New.ID))
	} else if err := s.deployTargets(ctx); err != nil {
		switch {
		case j.PlaintextStored:
			how := ""
			if s.opts.hold {
				how = " (with a corrected --to, add --reset-settings)"
			}
			return fmt.Errorf("%w\nThe new key %s is safe in the keyring and not deployed yet: fix the target, then run the same command again%s", err, j.New.Prefix, how)
		case j.Adopted && !errors.As(err, new(*HeldElsewhereError)):
			return fmt.Errorf("%w\nFix the target, then run the same command again", err)
		case j.Adopted:
			// Another machine's key: the error says who holds its plaintext.
			return err
		}
		return fmt.Errorf("%w\nThe new key %s was only in this run's memory (no keyring): the next run revokes it and issues another", err, j.New.Prefix)
	}
	event := rotlog.EventDeployed
	if len(targets) == 0 {
		event = "" // nothing was deployed by plana
	}
	return s.record(Deployed, event, targetKinds(targets))
}

func targetKinds(targets []string) string {
	var kinds []string
	for _, t := range targets {
		pt, _ := target.Parse(t)
		kinds = append(kinds, pt.Kind)
	}
	return strings.Join(kinds, ",")
}

// deployedByIssuer is step 2 of a rotation carried on from another machine
// whose targets plana cannot read the plaintext back from (exec:, exec-ab:,
// stdout): this machine has none to hand out, and the targets' own word
// (exec-ab's list) or the automation's calls with the new key say its
// issuer deployed it.
func (s *session) deployedByIssuer(ctx context.Context, targets []string) (bool, error) {
	j := s.j
	if !j.Adopted || len(targets) == 0 || s.plaintext != "" || j.PlaintextStored {
		return false, nil
	}
	if len(s.readableTargets(targets)) > 0 {
		return false, nil // the target can hold the plaintext: newPlaintext looks there
	}
	done, err := s.deployedElsewhere(ctx, targets)
	if err != nil || !done {
		return false, err
	}
	s.rep.Info(fmt.Sprintf("the new key %s is already deployed: its issuer deployed it", j.New.Prefix))
	for i := range j.Targets {
		j.Targets[i].Deployed, j.Targets[i].Error = true, ""
	}
	return true, s.record(Deployed, "", targetKinds(targets))
}

// targetNames are the targets the journal records.
func (j *Journal) targetNames() []string {
	var out []string
	for _, t := range j.Targets {
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
