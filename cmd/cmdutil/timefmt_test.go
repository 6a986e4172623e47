package cmdutil

import (
	"testing"
	"time"
)

func TestFuzzyAgo(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Second, "just now"},
		{time.Minute, "1 minute ago"},
		{45 * time.Minute, "45 minutes ago"},
		{3 * time.Hour, "about 3 hours ago"},
		{36 * time.Hour, "1 day ago"},
		{3 * 24 * time.Hour, "3 days ago"},
		{90 * 24 * time.Hour, "about 3 months ago"},
		{400 * 24 * time.Hour, "about 1 year ago"},
		{-2 * 24 * time.Hour, "in 2 days"},
		{-time.Second, "just now"},
	}
	for _, tt := range tests {
		if got := FuzzyAgo(now, now.Add(-tt.d)); got != tt.want {
			t.Errorf("FuzzyAgo(-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// An event is never "in about 1 year": one stamped ahead of BOS's present
// (its clock stepped back) shows its time and says so, and with no present
// (BOS not read) every time is absolute and labelled.
func TestAgoOnBOSClock(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ahead := now.Add(400 * 24 * time.Hour)
	tests := []struct {
		name      string
		got, want string
	}{
		{"past", Ago(now, now.Add(-3*time.Hour)), "about 3 hours ago"},
		{"a Date header's second", Ago(now, now.Add(time.Second)), "just now"},
		{"ahead", Ago(now, ahead), "2027-04-05 12:00 UTC (ahead of BOS's clock)"},
		{"no present", Ago(time.Time{}, now.In(time.FixedZone("CET", 3600))), "2026-03-01 12:00 UTC"},
		{"stamp", Stamp(now, now.Add(-72*time.Hour)), "2026-02-26 12:00 UTC (3 days ago)"},
		{"stamp ahead", Stamp(now, ahead), "2027-04-05 12:00 UTC (ahead of BOS's clock)"},
		{"stamp, no present", Stamp(time.Time{}, now), "2026-03-01 12:00 UTC"},
		{"due, no present", FuzzyAgo(time.Time{}, ahead), "2027-04-05 12:00 UTC"},
		{"due ahead", FuzzyAgo(now, now.Add(48*time.Hour)), "in 2 days"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestSparklineAndHourlyCounts(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := []time.Time{
		now.Add(-10 * time.Minute), now.Add(-20 * time.Minute), now.Add(-30 * time.Minute), now.Add(-40 * time.Minute),
		now.Add(-2*time.Hour - time.Minute),
		now.Add(-49 * time.Hour), // outside the window
		now.Add(time.Hour),       // in the future: ignored
		now.Add(time.Second),     // a Date header's rounding: counts as now
	}
	counts := HourlyCounts(now, 4, at)
	want := []int{0, 1, 0, 5}
	for i := range want {
		if counts[i] != want[i] {
			t.Fatalf("HourlyCounts = %v, want %v", counts, want)
		}
	}
	if got := Sparkline(counts); got != "▁▃▁█" {
		t.Errorf("Sparkline(%v) = %q", counts, got)
	}
	if got := Sparkline([]int{0, 0}); got != "▁▁" {
		t.Errorf("Sparkline of nothing = %q", got)
	}
	if got := Sparkline([]int{1, 1000}); []rune(got)[0] != '▂' {
		t.Errorf("a single call must stay visible next to a busy hour: %q", got)
	}
}
