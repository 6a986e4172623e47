package cmdutil

import (
	"math"
	"sort"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
)

// UsageSource is one place a key is called from: the "you forgot a place"
// signal while rotating.
type UsageSource struct {
	SourceIP  string    `json:"source_ip" yaml:"source_ip"`
	UserAgent string    `json:"user_agent" yaml:"user_agent"`
	Path      string    `json:"path" yaml:"path"`
	Calls     int       `json:"calls" yaml:"calls"`
	LastSeen  time.Time `json:"last_seen" yaml:"last_seen"`
}

// UsageTally groups execution-log entries by source IP, user agent and path
// as they stream in, page by page.
type UsageTally struct {
	by    map[[3]string]*UsageSource
	Total int
}

// NewUsageTally starts an empty tally.
func NewUsageTally() *UsageTally { return &UsageTally{by: map[[3]string]*UsageSource{}} }

// Add counts entries.
func (u *UsageTally) Add(entries []client.ExecutionLogEntry) {
	for _, e := range entries {
		k := [3]string{e.SourceIP, e.UserAgent, e.Path}
		s := u.by[k]
		if s == nil {
			s = &UsageSource{SourceIP: e.SourceIP, UserAgent: e.UserAgent, Path: e.Path}
			u.by[k] = s
		}
		s.Calls++
		if e.At.After(s.LastSeen) {
			s.LastSeen = e.At
		}
		u.Total++
	}
}

// Sources are the groups, busiest first, then most recent.
func (u *UsageTally) Sources() []UsageSource {
	out := make([]UsageSource, 0, len(u.by))
	for _, s := range u.by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		if !out[i].LastSeen.Equal(out[j].LastSeen) {
			return out[i].LastSeen.After(out[j].LastSeen)
		}
		return out[i].SourceIP+out[i].UserAgent+out[i].Path < out[j].SourceIP+out[j].UserAgent+out[j].Path
	})
	return out
}

// HourlyCounts buckets the times of entries into n hours ending at now,
// oldest first; entries outside the window are ignored.
func HourlyCounts(now time.Time, n int, at []time.Time) []int {
	counts := make([]int, n)
	for _, t := range at {
		d := now.Sub(t)
		if d < 0 {
			// now comes from a Date header with 1 s resolution: a call
			// just made can look slightly ahead of it.
			if d < -time.Minute {
				continue
			}
			d = 0
		}
		if idx := int(d / time.Hour); idx < n {
			counts[n-1-idx]++
		}
	}
	return counts
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws counts with ▁…█; an empty hour is ▁ and any non-empty
// hour is at least ▂, so a single call stays visible next to a busy hour.
func Sparkline(counts []int) string {
	peak := 0
	for _, c := range counts {
		peak = max(peak, c)
	}
	var b strings.Builder
	for _, c := range counts {
		if c == 0 || peak == 0 {
			b.WriteRune(sparks[0])
			continue
		}
		level := int(math.Ceil(float64(c) * float64(len(sparks)-1) / float64(peak)))
		b.WriteRune(sparks[max(1, level)])
	}
	return b.String()
}
