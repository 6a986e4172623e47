package config

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

// ParseDuration accepts Go's duration syntax ("36h", "90m") plus a leading
// whole number of days ("2d", "365d", "1d12h"). Rotation cadences are
// naturally in days, which time.ParseDuration does not know.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
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

// FormatDuration prints d so that ParseDuration reads it back exactly,
// preferring days: 365d, 1d12h, 30s.
func FormatDuration(d time.Duration) string {
	if d < day {
		return trimZeroUnits(d.String())
	}
	days, rest := d/day, d%day
	if rest == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%s", days, trimZeroUnits(rest.String()))
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
