package cmdutil

import (
	"fmt"
	"time"
)

// The times a command shows are all BOS's: stamps it returned, and the
// journals' and log's, taken from its Date header (client.ServerNow). An
// absolute time is printed in UTC and says so; a relative one is measured
// against BOS's present as the command's own reads saw it, never against
// this machine's clock, which may be hours or a year away from BOS's. A
// command that could not read BOS has no present: it passes a zero now, and
// its times show as absolute.

// StampFormat is an absolute time in a line or a cell: to the minute, and
// labelled.
const StampFormat = "2006-01-02 15:04 UTC"

// aheadNote marks an event stamped later than BOS's present: BOS's clock
// stepped back since (an NTP correction), or the stamp came from another
// clock.
const aheadNote = " (ahead of BOS's clock)"

// Ago says how long before BOS's present now the event at t happened ("3
// days ago"). An event cannot be in the future: one ahead of now shows as
// its time, saying so, rather than as "in about 1 year"; with no present
// (zero now), as its time.
func Ago(now, t time.Time) string {
	if now.IsZero() || t.Sub(now) >= time.Minute {
		return Stamp(now, t)
	}
	return FuzzyAgo(now, t)
}

// Stamp is the event at t as an absolute time with how long ago it was by
// BOS's present now: "2026-12-01 09:30 UTC (3 days ago)". See Ago for a t
// ahead of now or a zero now.
func Stamp(now, t time.Time) string {
	abs := t.UTC().Format(StampFormat)
	switch {
	case now.IsZero():
		return abs
	case t.Sub(now) >= time.Minute:
		return abs + aheadNote
	}
	return abs + " (" + FuzzyAgo(now, t) + ")"
}

// FuzzyAgo says how long ago t was relative to now ("3 days ago"), or how
// far ahead it is ("in 2 months"): for times that may be ahead, a due date.
// Events that happened are shown with Ago. A zero now (no present known)
// gives the absolute time.
func FuzzyAgo(now, t time.Time) string {
	if now.IsZero() {
		return t.UTC().Format(StampFormat)
	}
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
		return Plural(int(d/time.Second), "second", "seconds")
	case d < time.Hour:
		return Plural(int(d/time.Minute), "minute", "minutes")
	case d < day:
		return "about " + Plural(int(d/time.Hour), "hour", "hours")
	case d < 60*day:
		return Plural(int(d/day), "day", "days")
	case d < year:
		return "about " + Plural(int(d/month), "month", "months")
	}
	return "about " + Plural(int(d/year), "year", "years")
}

// Plural is n with the noun that goes with it: "1 key", "3 keys".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
