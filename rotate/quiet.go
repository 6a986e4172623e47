package rotate

import (
	"sort"
	"time"
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
