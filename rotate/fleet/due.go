package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate"
)

// DueOptions tunes Due.
type DueOptions struct {
	// Policy gives each key its cadence (rotate.Policy.Resolve); none:
	// 365 days.
	Policy rotate.Policy
	Within time.Duration // also list keys due this soon
	// UnusedFor flags active keys unused this long as revocation
	// candidates; 0: 90 days.
	UnusedFor time.Duration
}

// defaultCadence is a key's cadence when nothing sets one.
const defaultCadence = 365 * 24 * time.Hour

// DueItem is an active key past or near its rotation date, or unused for so
// long that revoking it may be the better move.
type DueItem struct {
	Key      client.APIKey `json:"key"`
	DueAt    time.Time     `json:"due_at"`
	Due      bool          `json:"due"` // overdue, or due within DueOptions.Within
	Overdue  bool          `json:"overdue"`
	Unused   bool          `json:"unused"` // a revocation candidate
	LastUsed *time.Time    `json:"last_used_at"`
}

// Due lists the active keys that are due for rotation at now (past DueAt, or
// within opts.Within of it) or unused for opts.UnusedFor, soonest first.
func Due(keys []client.APIKey, now time.Time, opts DueOptions) []DueItem {
	unusedFor := opts.UnusedFor
	if unusedFor <= 0 {
		unusedFor = 90 * 24 * time.Hour
	}
	var out []DueItem
	for _, k := range keys {
		if !k.Active() {
			continue
		}
		c := cmp.Or(opts.Policy.Resolve(k.Name, rotate.Settings{}).Cadence, defaultCadence)
		it := DueItem{Key: k, DueAt: k.CreatedAt.Add(c), LastUsed: k.LastUsedAt}
		it.Overdue = !it.DueAt.After(now)
		it.Due = !it.DueAt.After(now.Add(opts.Within))
		last := k.CreatedAt
		if k.LastUsedAt != nil {
			last = *k.LastUsedAt
		}
		it.Unused = now.Sub(last) >= unusedFor
		if it.Due || it.Unused {
			out = append(out, it)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DueAt.Before(out[j].DueAt) })
	return out
}

// State is how `keys due` describes the item: whether it is due, and
// whether it is unused. A key listed only because it is unused is not
// called due: it may have months to go.
func (it DueItem) State() string {
	due := ""
	switch {
	case it.Overdue:
		due = "overdue"
	case it.Due:
		due = "due soon"
	}
	switch {
	case it.Unused && due != "":
		return due + ", unused: revoke?"
	case it.Unused:
		return "unused: revoke?"
	}
	return due
}

// alarmLead is how long before its due date a key's reminder fires.
const alarmLead = 7

// WriteICS writes one all-day event per key on its due date, with a reminder
// a week before. A key already overdue gets its event today, and a reminder
// that would not lie after today fires at the next full hour: calendars do
// not fire alarms in the past. "Today" is now's date in UTC; now is the
// server's time. The UID is
// the key id, so importing a newer file updates the events instead of
// duplicating them. Lines end in CRLF, as RFC 5545 requires.
func WriteICS(w io.Writer, items []DueItem, now time.Time) error {
	cal := ics.NewCalendar()
	cal.SetMethod(ics.MethodPublish)
	cal.SetProductId("-//plana//key rotation reminders//EN")
	cal.SetName("BOS API key rotations")
	today := civilDay(now)
	for _, it := range items {
		ev := cal.AddEvent(it.Key.ID + "@plana")
		ev.SetDtStampTime(now.UTC())
		day := civilDay(it.DueAt)
		if day.Before(today) {
			day = today
		}
		ev.SetAllDayStartAt(day)
		ev.SetAllDayEndAt(day.AddDate(0, 0, 1))
		what := "Rotate"
		if it.Unused {
			what = "Rotate or revoke (unused)"
		}
		due := "due " + it.DueAt.UTC().Format("2006-01-02")
		if it.Overdue {
			due = "overdue since " + it.DueAt.UTC().Format("2006-01-02")
		}
		ev.SetSummary(fmt.Sprintf("%s BOS API key %s (%s), %s", what, it.Key.Name, it.Key.Prefix, due))
		ev.SetDescription(fmt.Sprintf("Key %s, created %s by %s, %s. Run: plana keys rotate %s",
			it.Key.Prefix, it.Key.CreatedAt.UTC().Format("2006-01-02"), it.Key.CreatedBy.Email, due, it.Key.ID))
		a := ev.AddAlarm()
		a.SetAction(ics.ActionDisplay)
		if remind := day.AddDate(0, 0, -alarmLead); remind.After(today) {
			a.SetTrigger(fmt.Sprintf("-P%dD", alarmLead))
		} else {
			// Midnight today has passed: the next full hour is still today
			// (or just after it) and still to come.
			a.SetProperty(ics.ComponentPropertyTrigger, now.UTC().Truncate(time.Hour).Add(time.Hour).Format("20060102T150405Z"),
				ics.WithValue(string(ics.ValueDataTypeDateTime)))
		}
		a.SetProperty(ics.ComponentPropertyDescription, "BOS API key "+it.Key.Name+" is "+due)
	}
	return cal.SerializeTo(w, ics.WithNewLineWindows)
}

// civilDay is t's date in UTC, at midnight.
func civilDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// overdue is --due's choice of keys, from what run read: the active keys
// past the cadence p gives each, in the server's time. The management key
// plana is using is left alone, with a warning: it is rotated by hand.
func (run *fleetRun) overdue(p rotate.Policy) ([]client.APIKey, error) {
	now, ok := run.r.API.ServerNow()
	if !ok {
		return nil, errors.New("the server sent no Date header: plana will not judge what is due by the local clock")
	}
	var due []client.APIKey
	for _, it := range Due(run.keys, now, DueOptions{Policy: p}) {
		switch {
		case !it.Overdue:
		case it.Key.ID == run.r.Who.Key.ID:
			reporter(run.r).Warn(fmt.Sprintf("skipping %s (%s): it is the management key plana is using; rotate it by hand", it.Key.Name, it.Key.Prefix))
		default:
			due = append(due, it.Key)
		}
	}
	return due, nil
}

// RotateDue rotates, or carries on, every key past its cadence (overdue)
// with the settings each settles on; a key without a target is listed and
// skipped. No key due: an empty result. The run reads who plana is and the
// keys once, for the choice and for every rotation.
func RotateDue(ctx context.Context, r *rotate.Rotator, o Options) (*Result, error) {
	run, err := start(ctx, r)
	if err != nil {
		return nil, err
	}
	due, err := run.overdue(o.Policy)
	if err != nil {
		return nil, err
	}
	if len(due) == 0 {
		return &Result{}, nil
	}
	return run.rotate(ctx, due, o)
}
