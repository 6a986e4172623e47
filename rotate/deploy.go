package rotate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

// resolveTargets is target.Resolve of each of targets, in a slice of its
// own.
func resolveTargets(targets []string) ([]string, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	out := make([]string, len(targets))
	for i, t := range targets {
		var err error
		if out[i], err = target.Resolve(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkTarget refuses, before step 1 creates anything, a deploy target that
// step 2 or 4 would fail on: an env file that is missing, a symlink, or not
// writable; or an env file other than those the rotation recorded, which
// would get the new key while the automation reading the recorded one kept
// only the old key, revoked at step 5.
func (s *session) checkTarget(ctx context.Context) error {
	var recorded []string
	for _, r := range s.journalTargets() {
		if t, _ := target.Parse(r); t.Kind == target.KindEnvFile {
			recorded = append(recorded, filepath.Clean(t.Arg))
		}
	}
	for _, to := range s.targets() {
		t, err := target.Parse(to)
		if err != nil {
			return err
		}
		if t.Kind != target.KindEnvFile || s.j.State.Reached(Finalized) {
			continue
		}
		if len(recorded) > 0 && !slices.Contains(recorded, filepath.Clean(t.Arg)) {
			return usageErrorf("the rotation of %s deploys to %s, as its first run recorded, but this run's --to resolves to %s: nothing was changed. "+
				"Pass --to env-file:%s (or no --to: the rotation keeps its target), or run from the directory the first run started in",
				s.j.Old.Prefix, strings.Join(recorded, ", "), t.Arg, recorded[0])
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
	keys, err := s.allKeys(ctx)
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
	if j.deployed() && slices.Equal(targets, s.journalTargets()) {
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
			return fmt.Errorf("%w\nThe new key %s is safe in the keyring and not deployed yet: fix the target, then run the same command again", err, j.New.Prefix)
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
// whose targets plana cannot read back (exec:, stdout): this machine has no
// plaintext to hand out, and the automation's own calls with the new key
// say its issuer deployed it.
func (s *session) deployedByIssuer(ctx context.Context, targets []string) (bool, error) {
	j := s.j
	if !j.Adopted || len(targets) == 0 || s.plaintext != "" || j.PlaintextStored {
		return false, nil
	}
	for _, to := range targets {
		if tg, err := s.open(to); err == nil && tg.Readable() {
			return false, nil // the target can hold the plaintext: newPlaintext looks there
		}
	}
	used, err := s.r.usedByOthers(ctx, j.New.ID)
	if err != nil || !used {
		return false, err
	}
	s.rep.Info(fmt.Sprintf("the new key %s is already in use: its issuer deployed it", j.New.Prefix))
	for i := range j.Targets {
		j.Targets[i].Deployed, j.Targets[i].Error = true, ""
	}
	return true, s.record(Deployed, "", targetKinds(targets))
}

// journalTargets are the targets the journal records.
func (s *session) journalTargets() []string {
	var out []string
	for _, t := range s.j.Targets {
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
