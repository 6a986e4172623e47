package rotate

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/plana-cli/plana/client"
)

// Bounds of a suggested quiet period.
const (
	minQuiet     = time.Hour
	maxQuiet     = 7 * 24 * time.Hour
	defaultQuiet = 24 * time.Hour
	// cadenceWindow is how much of the old key's history the suggestion
	// looks at.
	cadenceWindow = 30 * 24 * time.Hour
)

// SuggestQuietPeriod proposes how long the old key must stay unused before
// it is safe to revoke, from the times of its calls: twice the largest gap
// between consecutive calls (a nightly job → 48h, so one missed run is not
// mistaken for silence), clamped to [1h, 7d] and rounded up to the hour. With
// fewer than two calls there is no cadence to read: 24h.
func SuggestQuietPeriod(calls []time.Time) time.Duration {
	if len(calls) < 2 {
		return defaultQuiet
	}
	ts := append([]time.Time(nil), calls...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		if g := ts[i].Sub(ts[i-1]); g > gap {
			gap = g
		}
	}
	q := 2 * gap
	if q < minQuiet {
		q = minQuiet
	}
	if q > maxQuiet {
		q = maxQuiet
	}
	if r := q % time.Hour; r != 0 {
		q += time.Hour - r
	}
	return q
}

// resolveQuiet is the quiet period of this run: the option's, else the
// journal's, else one suggested from the old key's cadence (suggested).
func (s *session) resolveQuiet(ctx context.Context) (q time.Duration, suggested bool, err error) {
	if s.opts.QuietPeriod > 0 {
		return s.opts.QuietPeriod, false, nil
	}
	if q := s.j.quiet(); q > 0 {
		return q, false, nil
	}
	q, err = s.r.SuggestQuietPeriod(ctx, s.j.Old.ID)
	return q, true, err
}

// quietPeriod resolves the quiet period and keeps it in the journal, so a
// resumed run uses the same one.
func (s *session) quietPeriod(ctx context.Context) (time.Duration, error) {
	q, suggested, err := s.resolveQuiet(ctx)
	if err != nil {
		return 0, err
	}
	if suggested {
		s.rep.Info(fmt.Sprintf("no quiet period configured: using %s, twice the longest gap between the old key's calls over the last 30 days (set one with --quiet-period)", fmtDuration(q)))
	}
	s.j.QuietSeconds = int64(q / time.Second)
	return q, nil
}

// SuggestQuietPeriod reads the old key's calls of the last 30 days and
// proposes a quiet period from their cadence.
func (r *Rotator) SuggestQuietPeriod(ctx context.Context, keyID string) (time.Duration, error) {
	if _, err := r.API.Me(ctx); err != nil {
		return 0, err
	}
	now, _ := r.API.ServerNow()
	var calls []time.Time
	err := r.API.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: now.Add(-cadenceWindow), PageSize: logPageSize, Limit: 20000},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				calls = append(calls, e.At)
			}
			return nil
		})
	if err != nil {
		return 0, fmt.Errorf("reading the old key's execution log: %w", err)
	}
	return SuggestQuietPeriod(calls), nil
}
