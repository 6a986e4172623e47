// Package duration reads and prints durations in Go syntax plus days, the
// one format every plana and bos-emulator flag and setting takes.
package duration

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

var daysRe = regexp.MustCompile(`^(\d+)d(.*)$`)

// Parse accepts Go's duration syntax ("36h", "90m", "-2h") plus a leading
// whole number of days ("2d", "365d", "1d12h", "-1d"). Rotation cadences are
// naturally in days, which time.ParseDuration does not know.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok && daysRe.MatchString(rest) {
		d, err := Parse(rest)
		return -d, err
	}
	m := daysRe.FindStringSubmatch(s)
	if m == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 36h, 2d, 1d12h", s)
		}
		return d, nil
	}
	days, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || days > int64(math.MaxInt64/day) {
		return 0, fmt.Errorf("invalid duration %q: too many days", s)
	}
	d := time.Duration(days) * day
	if m[2] == "" {
		return d, nil
	}
	// The part after the days must be a plain positive Go duration: "1d-2h"
	// or "1d2d" are typos, not arithmetic.
	if !strings.ContainsAny(m[2][:1], "0123456789.") {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 36h, 2d, 1d12h", s)
	}
	rest, err := time.ParseDuration(m[2])
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 36h, 2d, 1d12h", s)
	}
	if rest > math.MaxInt64-d {
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	}
	return d + rest, nil
}

// Format prints d so that Parse reads it back exactly,
// preferring days: 365d, 1d12h, 30s.
func Format(d time.Duration) string {
	if d < day {
		return trimZeroUnits(d.String())
	}
	days, rest := d/day, d%day
	if rest == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%s", days, trimZeroUnits(rest.String()))
}

// Approx prints d for a person reading a wait line, rounded to what
// matters at its size: whole days from two days on when it is a multiple of
// a day ("7d"), minutes from an hour on ("2h30m0s"), else seconds. A
// negative d prints as 0s.
func Approx(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d >= 2*day && d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

// trimZeroUnits turns Go's "12h0m0s" into "12h" and "5m0s" into "5m".
func trimZeroUnits(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// JSON is a time.Duration that JSON output prints as Format does ("48h",
// "365d"), the way a person passed it on the command line, rather than as
// nanoseconds; it reads either back.
type JSON time.Duration

func (d JSON) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, Format(time.Duration(d))), nil
}

func (d *JSON) UnmarshalJSON(b []byte) error {
	if s, err := strconv.Unquote(string(b)); err == nil {
		v, err := Parse(s)
		*d = JSON(v)
		return err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration: want a string such as \"48h\" or a number of nanoseconds, got %s", b)
	}
	*d = JSON(n)
	return nil
}
