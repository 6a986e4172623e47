package rotate

import (
	"fmt"
	"io"
	"sort"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/plana-cli/plana/client"
)

// DueOptions tunes Due.
type DueOptions struct {
	Cadence time.Duration // how long a key may live; 0: 365 days
	Within  time.Duration // also list keys due this soon
	// Overrides sets another cadence for some keys, by id or exact name.
	Overrides map[string]time.Duration
	// UnusedFor flags active keys unused this long as revocation
	// candidates; 0: 90 days.
	UnusedFor time.Duration
}

// DueItem is an active key past or near its rotation date, or unused for so
// long that revoking it may be the better move.
type DueItem struct {
	Key      client.APIKey `json:"key"`
	DueAt    time.Time     `json:"due_at"`
	Overdue  bool          `json:"overdue"`
	Unused   bool          `json:"unused"` // a revocation candidate
	LastUsed *time.Time    `json:"last_used_at"`
}

// Due lists the active keys that are due for rotation at now (past DueAt, or
// within opts.Within of it) or unused for opts.UnusedFor, soonest first.
func Due(keys []client.APIKey, now time.Time, opts DueOptions) []DueItem {
	cadence := opts.Cadence
	if cadence <= 0 {
		cadence = 365 * 24 * time.Hour
	}
	unusedFor := opts.UnusedFor
	if unusedFor <= 0 {
		unusedFor = 90 * 24 * time.Hour
	}
	var out []DueItem
	for _, k := range keys {
		if !k.Active() {
			continue
		}
		c := cadence
		if o, ok := opts.Overrides[k.ID]; ok {
			c = o
		} else if o, ok := opts.Overrides[k.Name]; ok {
			c = o
		}
		it := DueItem{Key: k, DueAt: k.CreatedAt.Add(c), LastUsed: k.LastUsedAt}
		it.Overdue = !it.DueAt.After(now)
		last := k.CreatedAt
		if k.LastUsedAt != nil {
			last = *k.LastUsedAt
		}
		it.Unused = now.Sub(last) >= unusedFor
		if it.Overdue || !it.DueAt.After(now.Add(opts.Within)) || it.Unused {
			out = append(out, it)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DueAt.Before(out[j].DueAt) })
	return out
}

// WriteICS writes one all-day event per key on its due date, with a reminder
// a week before. The UID is the key id, so importing a newer file updates the
// events instead of duplicating them.
func WriteICS(w io.Writer, items []DueItem, now time.Time) error {
	cal := ics.NewCalendar()
	cal.SetMethod(ics.MethodPublish)
	cal.SetProductId("-//plana//key rotation reminders//EN")
	cal.SetName("BOS API key rotations")
	for _, it := range items {
		ev := cal.AddEvent(it.Key.ID + "@plana")
		ev.SetDtStampTime(now.UTC())
		ev.SetAllDayStartAt(it.DueAt.UTC())
		ev.SetAllDayEndAt(it.DueAt.UTC().AddDate(0, 0, 1))
		what := "Rotate"
		if it.Unused {
			what = "Rotate or revoke (unused)"
		}
		ev.SetSummary(fmt.Sprintf("%s BOS API key %s (%s)", what, it.Key.Name, it.Key.Prefix))
		ev.SetDescription(fmt.Sprintf("Key %s, created %s by %s. Run: plana keys rotate %s",
			it.Key.Prefix, it.Key.CreatedAt.UTC().Format("2006-01-02"), it.Key.CreatedBy.Email, it.Key.ID))
		a := ev.AddAlarm()
		a.SetAction(ics.ActionDisplay)
		a.SetTrigger("-P7D")
		a.SetProperty(ics.ComponentPropertyDescription, "BOS API key "+it.Key.Name+" is due for rotation in a week")
	}
	return cal.SerializeTo(w)
}
