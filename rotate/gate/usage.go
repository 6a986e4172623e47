package gate

import (
	"cmp"
	"slices"
	"time"

	"github.com/plana-cli/plana/client"
)

// Source is one place a key is called from: calls grouped by source IP,
// user agent and path. While rotating it is the "you forgot a place" signal:
// where the old key is still used from.
type Source struct {
	SourceIP  string    `json:"source_ip" yaml:"source_ip"`
	UserAgent string    `json:"user_agent" yaml:"user_agent"`
	Path      string    `json:"path" yaml:"path"`
	Calls     int       `json:"calls" yaml:"calls"`
	LastSeen  time.Time `json:"last_seen" yaml:"last_seen"`
}

// Tally groups execution-log entries into Sources as they stream in, page
// by page.
type Tally struct {
	by    map[[3]string]*Source
	Total int // entries added
}

// NewTally starts an empty tally.
func NewTally() *Tally { return &Tally{by: map[[3]string]*Source{}} }

// Add counts entries, but not plana's own checks that the key answers
// (planaCheck): they are no place the key is used from.
func (t *Tally) Add(entries ...client.ExecutionLogEntry) {
	for _, e := range entries {
		if planaCheck(e) {
			continue
		}
		k := [3]string{e.SourceIP, e.UserAgent, e.Path}
		s := t.by[k]
		if s == nil {
			s = &Source{SourceIP: e.SourceIP, UserAgent: e.UserAgent, Path: e.Path}
			t.by[k] = s
		}
		s.Calls++
		if e.At.After(s.LastSeen) {
			s.LastSeen = e.At
		}
		t.Total++
	}
}

// Sources are the groups, busiest first, then the most recently seen, then
// by source IP, user agent and path: the same order however the entries came.
func (t *Tally) Sources() []Source {
	out := make([]Source, 0, len(t.by))
	for _, s := range t.by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Source) int {
		return cmp.Or(
			cmp.Compare(b.Calls, a.Calls),
			b.LastSeen.Compare(a.LastSeen),
			cmp.Compare(a.SourceIP, b.SourceIP),
			cmp.Compare(a.UserAgent, b.UserAgent),
			cmp.Compare(a.Path, b.Path),
		)
	})
	return out
}
