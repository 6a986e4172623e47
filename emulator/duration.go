package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration accepts Go duration syntax plus whole days with a "d" unit,
// alone or leading: "2d", "36h", "1d12h", "365d".
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || days < 0 || days > int64(106751) {
			return 0, fmt.Errorf("invalid duration %q", orig)
		}
		total = time.Duration(days) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			if neg {
				total = -total
			}
			return total, nil
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil || rest < 0 {
		return 0, fmt.Errorf("invalid duration %q", orig)
	}
	total += rest
	if total < 0 {
		return 0, fmt.Errorf("invalid duration %q: too long", orig)
	}
	if neg {
		total = -total
	}
	return total, nil
}
