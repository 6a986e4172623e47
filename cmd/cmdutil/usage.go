package cmdutil

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
)

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
func Sparkline(counts []int) string { return sparkline(counts, peakOf(counts)) }

func peakOf(counts ...[]int) int {
	peak := 0
	for _, cs := range counts {
		for _, c := range cs {
			peak = max(peak, c)
		}
	}
	return peak
}

// KeyTraffic is one key's line in a RotationChart.
type KeyTraffic struct {
	Label        string // "old", "new"
	Prefix       string
	CallsPerHour []int
}

// RotationChart draws the old and the new key's calls per hour on one scale,
// one line each, so the traffic is seen moving from one key to the other.
func RotationChart(keys ...KeyTraffic) string {
	all := make([][]int, len(keys))
	for i, k := range keys {
		all[i] = k.CallsPerHour
	}
	peak := peakOf(all...)
	var b strings.Builder
	for _, k := range keys {
		total := 0
		for _, c := range k.CallsPerHour {
			total += c
		}
		fmt.Fprintf(&b, "  %-3s %s  %s  %d\n", k.Label, k.Prefix, sparkline(k.CallsPerHour, peak), total)
	}
	return b.String()
}

// ChartHours is how many hours a rotation chart spans: the rotation so far
// plus six hours of the old key's traffic before it, at most 48.
func ChartHours(rotationStart, now time.Time) int {
	return min(max(int(now.Sub(rotationStart)/time.Hour)+7, 6), 48)
}

// maxChartEntries bounds what a chart reads of one key's execution log.
const maxChartEntries = 50000

// KeyCallsPerHour reads a key's calls over the hours ending at now.
func KeyCallsPerHour(ctx context.Context, c *client.Client, keyID string, now time.Time, hours int) ([]int, error) {
	var at []time.Time
	err := c.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: now.Add(-time.Duration(hours) * time.Hour), PageSize: 1000, Limit: maxChartEntries},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				at = append(at, e.At)
			}
			return nil
		})
	return HourlyCounts(now, hours, at), err
}

func sparkline(counts []int, peak int) string {
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
