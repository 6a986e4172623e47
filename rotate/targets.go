package rotate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/plana-cli/plana/internal/notify"
)

// TargetState is how far one deploy target of a rotation got: each target
// is deployed, then finalized, on its own, so a run that fails at one
// target leaves the others done and the next run does only what is left.
type TargetState struct {
	Target    string `json:"target"`
	Deployed  bool   `json:"deployed"`
	Finalized bool   `json:"finalized"`
	// Error is the last failure at this target, until it succeeds.
	Error string `json:"error,omitempty"`
}

// targetStates are the journal's targets; a journal written before there
// could be several has its one target in Target.
func (j *Journal) targetStates() []TargetState {
	if len(j.Targets) == 0 && j.Target != "" {
		j.Targets = []TargetState{{Target: j.Target, Deployed: j.Deployed, Finalized: j.Step.Reached(StepFinalized)}}
	}
	return j.Targets
}

// setTargets makes targets the rotation's, keeping how far each already
// listed got; Target stays the first, for readers of older journals.
func (j *Journal) setTargets(targets []string) {
	old := j.targetStates()
	next := make([]TargetState, 0, len(targets))
	for _, t := range targets {
		st := TargetState{Target: t}
		if i := slices.IndexFunc(old, func(o TargetState) bool { return o.Target == t }); i >= 0 {
			st = old[i]
		}
		next = append(next, st)
	}
	j.Targets = next
	j.Target = ""
	if len(targets) > 0 {
		j.Target = targets[0]
	}
}

// optsTargets are the targets the options give, if any.
func optsTargets(o Options) []string {
	switch {
	case len(o.Targets) > 0:
		return o.Targets
	case o.Target != "":
		return []string{o.Target}
	}
	return nil
}

// targets are this run's targets: the options', else the journal's.
func (s *session) targets() []string {
	if t := optsTargets(s.opts); len(t) > 0 {
		return t
	}
	return s.journalTargets()
}

// stepEnv is what an exec: target learns of the rotation from its
// environment (the plaintext goes on its stdin only): which step it is run
// for, and the keys' names and public prefixes.
func (s *session) stepEnv(step notify.Step) []string {
	name := s.j.Old.Name
	env := []string{"PLANA_STEP=" + string(step), "PLANA_OLD_KEY_PREFIX=" + s.j.Old.Prefix}
	if n := s.j.New; n != nil {
		name = n.Name
		env = append(env, "PLANA_KEY_PREFIX="+n.Prefix)
	}
	return append(env, "PLANA_KEY_NAME="+name)
}

// deployTargets is step 2 at each target not deployed yet, in order. It
// stops at the first that fails, recording how far each got.
func (s *session) deployTargets(ctx context.Context) error {
	j := s.j
	for i := range j.Targets {
		st := &j.Targets[i]
		if st.Deployed {
			continue
		}
		t, err := ParseTarget(st.Target)
		if err != nil {
			return err
		}
		key, err := s.newPlaintext(ctx)
		if err != nil {
			return err
		}
		changed, err := deployTo(ctx, t, key, s.opts.SecretOut, s.opts.ExecTimeout, s.stepEnv(notify.StepDeploy))
		if err != nil {
			return s.targetFailed(st, t, notify.StepDeploy, StepDeployed, err)
		}
		st.Deployed, st.Error = true, ""
		if err := s.save(); err != nil {
			return err
		}
		if changed {
			s.rep.Info("deployed to " + t.String())
		}
		s.notify(notify.Deployed, func(e *notify.Event) { e.Target = notify.Text(t.String()) })
	}
	return nil
}

// finalizeTargets is step 4 at each target not finalized yet: an env file
// keeps only the new key, an exec: target is run with PLANA_STEP=finalize.
func (s *session) finalizeTargets(ctx context.Context) error {
	j := s.j
	for i := range j.targetStates() {
		st := &j.Targets[i]
		if st.Finalized {
			continue
		}
		t, err := ParseTarget(st.Target)
		if err != nil {
			return err
		}
		switch t.Kind {
		case TargetEnvFile, TargetExec:
			key, err := s.newPlaintext(ctx)
			if err != nil {
				return err
			}
			if t.Kind == TargetEnvFile {
				changed, ferr := EnvFile{Path: t.Arg}.Finalize(key)
				err = ferr
				if err == nil && changed {
					s.rep.Info(fmt.Sprintf("%s now holds only the new key, under %s", t.Arg, EnvKey))
				}
			} else if _, err = deployTo(ctx, t, key, nil, s.opts.ExecTimeout, s.stepEnv(notify.StepFinalize)); err == nil {
				s.rep.Info(fmt.Sprintf("ran %s with PLANA_STEP=finalize", t))
			}
			if err != nil {
				return s.targetFailed(st, t, notify.StepFinalize, StepFinalized, err)
			}
		case TargetStdout:
			s.rep.Info("remove the old key from where the printed key went yourself: plana only printed the new one")
		}
		st.Finalized, st.Error = true, ""
		if err := s.save(); err != nil {
			return err
		}
		s.notify(notify.Finalized, func(e *notify.Event) { e.Target = notify.Text(t.String()) })
	}
	return nil
}

// leftAfter says, after a target failed, which targets are done and that
// the next run does only the others.
func (s *session) leftAfter(step Step) string {
	var done, left []string
	for _, st := range s.j.Targets {
		ok := st.Deployed
		if step == StepFinalized {
			ok = st.Finalized
		}
		if ok {
			done = append(done, st.Target)
		} else {
			left = append(left, st.Target)
		}
	}
	if len(s.j.Targets) < 2 {
		return ""
	}
	return fmt.Sprintf("\n%d of %d targets done (%s); run the same command again to do only what is left: %s",
		len(done), len(s.j.Targets), strings.Join(done, ", "), strings.Join(left, ", "))
}

// target is the first of this run's targets, for the steps that read one
// target back (the plaintext from an env file, an abort's env file).
func (s *session) target() string {
	if t := s.targets(); len(t) > 0 {
		return t[0]
	}
	return ""
}

// targetFailed records err at the target st (t) during step, so the next
// run retries that target alone, tells the hooks, and says what is left
// after the journal step that could not be reached.
func (s *session) targetFailed(st *TargetState, t Target, step notify.Step, reach Step, err error) error {
	st.Error = err.Error()
	if serr := s.save(); serr != nil {
		return serr
	}
	s.notify(notify.Failed, func(e *notify.Event) {
		e.Step, e.Target, e.Error = step, notify.Text(t.String()), notify.Text(err.Error())
	})
	return fmt.Errorf("%w%s", err, s.leftAfter(reach))
}
