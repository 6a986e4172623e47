package gate

import (
	"fmt"
	"strings"
	"time"

	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate/ref"
)

// Report is one evaluation of the gate of step 3, in server time.
type Report struct {
	Now         time.Time     `json:"now"`
	QuietPeriod duration.JSON `json:"quiet_period"`
	Old         ref.Key       `json:"old"`
	New         *ref.Key      `json:"new,omitempty"`
	// NewCreatedAt is when the new key was issued: the rotation's start.
	NewCreatedAt time.Time `json:"new_created_at,omitzero"`
	NewUsed      bool      `json:"new_used"`
	NewFirstUse  time.Time `json:"new_first_use,omitzero"`
	OldRevoked   bool      `json:"old_revoked"`
	OldRevokedAt time.Time `json:"old_revoked_at,omitzero"`
	OldQuiet     bool      `json:"old_quiet"`
	OldLastUse   time.Time `json:"old_last_use,omitzero"`
	// QuietUntil is when the old key's quiet period ends if it stays unused.
	QuietUntil time.Time `json:"quiet_until,omitzero"`
	// FutureUse is the latest use of the old key that BOS stamped after its
	// own present; such a use counts from when plana first saw it.
	FutureUse time.Time `json:"future_use,omitzero"`
	Sources   []Source  `json:"sources,omitempty"`
	// Migration is each source of the old key over the look-back window,
	// and how far it has moved to the new key; HeldUntil is when the last
	// source that has not moved stops holding the gate if it stays quiet.
	Migration []Migration `json:"migration,omitempty"`
	HeldUntil time.Time   `json:"held_until,omitzero"`
	// Holds says this look saw the gate hold; Passed, that two looks at
	// least LookInterval apart in real time did (the first at HeldSince),
	// the second reading the quiet window again: one look never decides.
	Holds        bool          `json:"holds"`
	HeldSince    time.Time     `json:"held_since,omitzero"`
	LookInterval duration.JSON `json:"look_interval,omitempty"`
	Passed       bool          `json:"passed"`
}

// Summary says what the gate still waits for, in one line.
func (g Report) Summary() string {
	if g.Passed && g.OldRevoked && g.New != nil {
		// An emergency: the old key was revoked, not waited out.
		when := ""
		if !g.OldRevokedAt.IsZero() {
			when = " " + duration.Approx(g.Now.Sub(g.OldRevokedAt)) + " ago"
		}
		return fmt.Sprintf("the new key %s is in use (first call %s); the old key %s was revoked%s, so no quiet period applies",
			g.New.Prefix, g.NewFirstUse.UTC().Format(time.RFC3339), g.Old.Prefix, when)
	}
	if g.Passed {
		return "the new key is in use and the old key has been quiet for " + duration.Approx(time.Duration(g.QuietPeriod)) + ", seen by two looks"
	}
	if g.Holds {
		return fmt.Sprintf("the gate holds at this look (at %s, server time); one look never decides: a second, at least %s later, must see it hold too",
			g.Now.UTC().Format(time.RFC3339), duration.Approx(time.Duration(g.LookInterval)))
	}
	var parts []string
	if g.New != nil && !g.NewUsed {
		parts = append(parts, fmt.Sprintf("the new key %s has not been used yet: deploy it and let the automation run", g.New.Prefix))
	}
	// An evaluation cut short by an error knows no last use to tell of.
	if !g.OldQuiet && !g.OldLastUse.IsZero() {
		p := fmt.Sprintf("the old key %s was used %s ago", g.Old.Prefix, duration.Approx(g.Now.Sub(g.OldLastUse)))
		if !g.QuietUntil.IsZero() {
			p += fmt.Sprintf(" (quiet from %s if it stays unused)", g.QuietUntil.UTC().Format(time.RFC3339))
		}
		if !g.FutureUse.IsZero() {
			p += fmt.Sprintf("; BOS stamped a use at %s, after its own clock's present (a server clock fault): counted as a use when plana first saw it",
				g.FutureUse.UTC().Format(time.RFC3339))
		}
		if len(g.Sources) > 0 {
			var ss []string
			for _, s := range g.Sources {
				// Whoever calls BOS chose these: escapes are shown, not obeyed.
				ss = append(ss, fmt.Sprintf("%s %q %s ×%d", textsafe.Clean(s.SourceIP), s.UserAgent, textsafe.Clean(s.Path), s.Calls))
			}
			p += "; still used from: " + strings.Join(ss, ", ")
		}
		parts = append(parts, p)
	}
	var held []string
	for _, m := range g.Migration {
		if m.Holding {
			held = append(held, m.String())
		}
	}
	if len(held) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d sources of the old key have not reached the new one: %s", len(held), len(g.Migration), strings.Join(held, "; ")))
	}
	return strings.Join(parts, "; ")
}
