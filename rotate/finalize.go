package rotate

import (
	"context"
	"fmt"
)

// confirm is step 4, the human's: remove the old key and the fallback code.
func (s *session) confirm(prompt string) error {
	if s.opts.Yes {
		return nil
	}
	if s.opts.Confirm == nil {
		return ErrConfirmRequired
	}
	ok, err := s.opts.Confirm(prompt)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: stopped before revoking %s; run the same command again when ready", ErrPending, s.j.Old.Prefix)
	}
	return nil
}

// ensureFinalized is step 4 in a planned rotation: asked, then done.
func (s *session) ensureFinalized(ctx context.Context) error {
	s.announce()
	prompt := fmt.Sprintf("Remove the old key %s from the automation (and any fallback code) and revoke it?", s.j.Old.Prefix)
	if t, _ := ParseTarget(s.j.Target); t.Kind == TargetEnvFile {
		prompt = fmt.Sprintf("Leave only the new key in %s and revoke the old key %s?", t.Arg, s.j.Old.Prefix)
	}
	if err := s.confirm(prompt); err != nil {
		return err
	}
	return s.finalize(ctx)
}

// finalize leaves only the new key in an env-file target.
func (s *session) finalize(ctx context.Context) error {
	t, err := ParseTarget(s.j.Target)
	if err != nil {
		return err
	}
	if t.Kind == TargetEnvFile {
		key, err := s.newPlaintext(ctx)
		if err != nil {
			return err
		}
		changed, err := EnvFile{Path: t.Arg}.Finalize(key)
		if err != nil {
			return err
		}
		if changed {
			s.rep.Info(fmt.Sprintf("%s now holds only the new key, under %s", t.Arg, EnvKey))
		}
	} else if t.Kind != TargetNone {
		s.rep.Info("remove the old key from " + t.String() + " yourself: plana only adds keys there")
	}
	return s.record(StepFinalized, EventFinalized, t.Kind)
}
