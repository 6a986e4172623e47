package gate

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// Bounds of a suggested quiet period.
const (
	minQuiet = time.Hour
	maxQuiet = 7 * 24 * time.Hour
	// defaultQuiet is the quiet period when the old key's calls are too
	// few to read a cadence from.
	defaultQuiet = 24 * time.Hour
	// cadenceWindow is how much of the old key's history the suggestion
	// looks at.
	cadenceWindow = 30 * 24 * time.Hour
)

// suggestQuiet proposes how long the old key must stay unused before it
// is safe to revoke, from the times of its calls: twice the largest gap
// between consecutive calls (a nightly job → 48h, so one missed run is not
// mistaken for silence), clamped to [1h, 7d] and rounded up to the hour.
// With fewer than two calls there is no cadence to read: 24h. why says how
// it was found.
func suggestQuiet(calls []time.Time) (time.Duration, string) {
	if len(calls) < 2 {
		return defaultQuiet, fmt.Sprintf("the default: the old key made %d calls over the last 30 days, too few to read a cadence from", len(calls))
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
	why := fmt.Sprintf("twice the longest gap between the old key's calls over the last 30 days (%s)", duration.Approx(gap))
	switch {
	case q < minQuiet:
		q, why = minQuiet, fmt.Sprintf("the shortest plana suggests: twice the longest gap between the old key's calls over the last 30 days is only %s", duration.Approx(q))
	case q > maxQuiet:
		q, why = maxQuiet, fmt.Sprintf("the longest plana suggests: twice the longest gap between the old key's calls over the last 30 days is %s", duration.Approx(q))
	}
	if r := q % time.Hour; r != 0 {
		q += time.Hour - r
	}
	return q, why
}

// Suggest reads the old key's calls of the last 30 days and proposes a
// quiet period from their cadence, with the words for how it was found.
func Suggest(ctx context.Context, api *client.Client, keyID string) (time.Duration, string, error) {
	now, ok := api.ServerNow()
	if !ok {
		// The look-back starts from the server's present: ask it.
		if _, err := api.Me(ctx); err != nil {
			return 0, "", err
		}
		now, _ = api.ServerNow()
	}
	var calls []time.Time
	err := api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: now.Add(-cadenceWindow), PageSize: pageSize, Limit: 20000},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				if !planaCheck(e) {
					calls = append(calls, e.At)
				}
			}
			return nil
		})
	if err != nil {
		return 0, "", fmt.Errorf("reading the old key's execution log: %w", err)
	}
	q, why := suggestQuiet(calls)
	return q, why, nil
}
