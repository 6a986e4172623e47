package gate

import (
	"strings"
	"testing"
	"time"
)

func TestSuggestQuietPeriod(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	every := func(n int, d time.Duration) []time.Time {
		var ts []time.Time
		for i := 0; i < n; i++ {
			ts = append(ts, t0.Add(time.Duration(i)*d))
		}
		return ts
	}
	tests := []struct {
		name  string
		calls []time.Time
		want  time.Duration
	}{
		{"no history", nil, 24 * time.Hour},
		{"one call", every(1, time.Hour), 24 * time.Hour},
		{"nightly", every(30, 24*time.Hour), 48 * time.Hour},
		{"continuous worker", every(100, time.Second), time.Hour},
		{"weekly", every(4, 7*24*time.Hour), 7 * 24 * time.Hour},
		{"rounded up to the hour", []time.Time{t0, t0.Add(90 * time.Minute)}, 3 * time.Hour},
		{"unsorted", []time.Time{t0.Add(5 * time.Hour), t0, t0.Add(time.Hour)}, 8 * time.Hour},
	}
	for _, tt := range tests {
		if got, _ := suggestQuiet(tt.calls); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// The default quiet period, with no history to read, is called that.
func TestDefaultQuietPeriodIsCalledTheDefault(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, calls := range [][]time.Time{nil, {t0}} {
		q, why := suggestQuiet(calls)
		if q != defaultQuiet || strings.Contains(why, "twice") || !strings.Contains(why, "default") {
			t.Errorf("%d calls: %s, %q", len(calls), q, why)
		}
	}
	if q, why := suggestQuiet([]time.Time{t0, t0.Add(24 * time.Hour)}); q != 48*time.Hour || !strings.Contains(why, "twice the longest gap") || !strings.Contains(why, "24h") {
		t.Errorf("a daily job: %s, %q", q, why)
	}
}
