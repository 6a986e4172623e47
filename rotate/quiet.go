package rotate

import (
	"context"
	"fmt"
	"time"

	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/gate"
)

// resolveQuiet is the quiet period of this run: the one the session
// settled on (settingsOf: recorded, else flags, rule, profile), else the
// last of settingsOf's layers, one suggested from the old key's call
// cadence, suggested then saying how it was found.
func (s *session) resolveQuiet(ctx context.Context) (q time.Duration, suggested string, err error) {
	if s.opts.QuietPeriod > 0 {
		return s.opts.QuietPeriod, "", nil
	}
	return gate.Suggest(ctx, s.r.API, s.j.Old.ID)
}

// quietPeriod resolves the quiet period and keeps it in the journal, so a
// resumed run uses the same one.
func (s *session) quietPeriod(ctx context.Context) (time.Duration, error) {
	q, suggested, err := s.resolveQuiet(ctx)
	if err != nil {
		return 0, err
	}
	if suggested != "" {
		s.rep.Info(fmt.Sprintf("no quiet period configured: using %s, %s (set one with --quiet-period)", duration.Approx(q), suggested))
	}
	s.j.QuietSeconds, s.j.QuietSuggested = int64(q/time.Second), suggested != ""
	return q, nil
}
