package rotate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/rotate/target"
)

// TargetState is how far one deploy target of a rotation got: each target
// is deployed, then finalized, on its own, so a run that fails at one
// target leaves the others done and the next run does only what is left.
type TargetState struct {
	Target    string `json:"target"`
	Deployed  bool   `json:"deployed"`
	Finalized bool   `json:"finalized"`
	// Readable says the target gives the plaintext back, so that any
	// machine that can read it carries the rotation on.
	Readable bool `json:"readable"`
	// Error is the last failure at this target, until it succeeds.
	Error string `json:"error,omitempty"`
}

// setTargets makes targets the rotation's, keeping how far each already
// listed got.
func (j *Journal) setTargets(targets []string) {
	old := j.Targets
	next := make([]TargetState, 0, len(targets))
	for _, t := range targets {
		st := TargetState{Target: t}
		if i := slices.IndexFunc(old, func(o TargetState) bool { return o.Target == t }); i >= 0 {
			st = old[i]
		}
		if tg, err := target.Open(t, target.Config{}); err == nil {
			st.Readable = tg.Readable()
		}
		next = append(next, st)
	}
	j.Targets = next
}

// targets are this run's targets: the options', else the journal's.
func (s *session) targets() []string {
	if len(s.opts.Targets) > 0 {
		return s.opts.Targets
	}
	return s.j.targetNames()
}

// targetConfig is how this run's targets behave. What they have to say
// beyond their error goes to the reporter alone: warnings, and (exec:) a
// failed command's stderr, which the journal that keeps the error may
// never hold.
func (s *session) targetConfig() target.Config {
	return target.Config{Out: s.opts.SecretOut, ExecTimeout: s.opts.ExecTimeout, Warn: s.rep.Warn}
}

// open is the target a --to value names, as this run configures it. A
// target is opened once per session: a store's client, made on first use,
// serves every step of the run.
func (s *session) open(to string) (target.Target, error) {
	if t, ok := s.opened[to]; ok {
		return t, nil
	}
	t, err := target.Open(to, s.targetConfig())
	if err != nil {
		return nil, err
	}
	if s.opened == nil {
		s.opened = map[string]target.Target{}
	}
	s.opened[to] = t
	return t, nil
}

// keys is what a target is told of this rotation: the new key's plaintext
// is asked only by the operations that write it. A plaintext this machine
// cannot give is the rotation's failure, not the target's: *missing holds
// why, once asked.
func (s *session) keys() (k target.Keys, missing *error) {
	missing = new(error)
	k = target.Keys{Old: s.j.Old, Log: s.rotationLine(), Plaintext: func(ctx context.Context) (string, error) {
		p, err := s.newPlaintext(ctx)
		*missing = err
		return p, err
	}}
	if s.j.New != nil {
		k.New = *s.j.New
	}
	return k, missing
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
		t, err := s.open(st.Target)
		if err != nil {
			return err
		}
		k, missing := s.keys()
		note, err := t.Deploy(ctx, k)
		if err != nil && *missing != nil {
			return err
		}
		if err != nil {
			return s.targetFailed(st, t, notify.StepDeploy, Deployed, err)
		}
		st.Deployed, st.Error = true, ""
		if err := s.save(); err != nil {
			return err
		}
		if note != "" {
			s.rep.Info(note)
		}
		s.notify(notify.Deployed, func(e *notify.Event) { e.Target = notify.Text(t.String()) })
	}
	return nil
}

// finalizeTargets is step 4 at each target not finalized yet: each keeps
// only the new key (an exec: target is run with PLANA_STEP=finalize).
func (s *session) finalizeTargets(ctx context.Context) error {
	j := s.j
	for i := range j.Targets {
		st := &j.Targets[i]
		if st.Finalized {
			continue
		}
		t, err := s.open(st.Target)
		if err != nil {
			return err
		}
		k, missing := s.keys()
		note, err := t.Finalize(ctx, k)
		if err != nil && *missing != nil {
			return err
		}
		if err != nil {
			return s.targetFailed(st, t, notify.StepFinalize, Finalized, err)
		}
		if note != "" {
			s.rep.Info(note)
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
func (s *session) leftAfter(step State) string {
	var done, left []string
	for _, st := range s.j.Targets {
		ok := st.Deployed
		if step == Finalized {
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

// targetFailed records err at the target st (t) during step, so the next
// run retries that target alone, tells the hooks, and says what is left
// after the journal step that could not be reached.
func (s *session) targetFailed(st *TargetState, t target.Target, step notify.Step, reach State, err error) error {
	st.Error = err.Error()
	if serr := s.save(); serr != nil {
		return serr
	}
	if errors.Is(err, context.Canceled) {
		// Interrupted, not failed: the walk tells the hooks so.
		return fmt.Errorf("%w%s", err, s.leftAfter(reach))
	}
	s.notify(notify.Failed, func(e *notify.Event) {
		e.Step, e.Target, e.Error = step, notify.Text(t.String()), notify.Text(err.Error())
	})
	return fmt.Errorf("%w%s", err, s.leftAfter(reach))
}
