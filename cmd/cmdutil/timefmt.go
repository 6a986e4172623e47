package cmdutil

import (
	"fmt"
	"time"
)

// FuzzyAgo says how long ago t was relative to now ("3 days ago"), or how
// far ahead it is ("in 2 months").
func FuzzyAgo(now, t time.Time) string {
	d := now.Sub(t)
	// Server times come from a Date header with 1 s resolution, so a
	// moment ago can look a moment ahead.
	if d.Abs() < time.Minute {
		return "just now"
	}
	if d < 0 {
		return "in " + FuzzyDuration(-d)
	}
	return FuzzyDuration(d) + " ago"
}

// FuzzyDuration renders d in its largest sensible unit: "45 seconds",
// "about 1 hour", "3 days", "about 2 months", "about 1 year".
func FuzzyDuration(d time.Duration) string {
	const (
		day   = 24 * time.Hour
		month = 30 * day
		year  = 365 * day
	)
	switch {
	case d < time.Minute:
		return plural(int(d/time.Second), "second")
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < day:
		return "about " + plural(int(d/time.Hour), "hour")
	case d < 60*day:
		return plural(int(d/day), "day")
	case d < year:
		return "about " + plural(int(d/month), "month")
	}
	return "about " + plural(int(d/year), "year")
}

func plural(n int, unit string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", unit)
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
