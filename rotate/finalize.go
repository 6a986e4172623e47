package rotate

import (
	"context"
	"fmt"
	"strings"

	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
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
	var files, execs []string
	for _, st := range s.j.Targets {
		switch t, _ := target.Parse(st.Target); t.Kind {
		case target.KindEnvFile:
			files = append(files, t.Arg)
		case target.KindExec, target.KindExecAB:
			execs = append(execs, t.Arg)
		case target.KindStdout:
		default:
			files = append(files, t.String())
		}
	}
	if len(files)+len(execs) > 0 && len(files)+len(execs) == len(s.j.Targets) {
		var where []string
		if len(files) > 0 {
			where = append(where, "leave only the new key in "+strings.Join(files, ", "))
		}
		for _, c := range execs {
			where = append(where, fmt.Sprintf("run %q with PLANA_STEP=finalize", c))
		}
		prompt = fmt.Sprintf("%s, and revoke the old key %s?", upperFirst(strings.Join(where, "; ")), s.j.Old.Prefix)
	}
	if err := s.confirm(prompt); err != nil {
		return err
	}
	return s.finalize(ctx)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// finalize is step 4 at every target (see finalizeTargets).
func (s *session) finalize(ctx context.Context) error {
	if err := s.finalizeTargets(ctx); err != nil {
		return err
	}
	var kinds []string
	for _, st := range s.j.Targets {
		t, _ := target.Parse(st.Target)
		kinds = append(kinds, t.Kind)
	}
	return s.record(Finalized, rotlog.EventFinalized, strings.Join(kinds, ","))
}
