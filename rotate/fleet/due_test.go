package fleet

import (
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate"
)

func TestDueAndICS(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	recent := now.Add(-time.Hour)
	key := func(id string, age time.Duration, lastUsed *time.Time, status string) client.APIKey {
		return client.APIKey{ID: id, Name: "k " + id, Prefix: "pa_live_" + id, Status: status, CreatedAt: now.Add(-age), LastUsedAt: lastUsed}
	}
	keys := []client.APIKey{
		key("OVERDUE1", 400*day, &recent, client.StatusActive),
		key("SOON0001", 350*day, &recent, client.StatusActive),
		key("FRESH001", 10*day, &recent, client.StatusActive),
		key("UNUSED01", 100*day, nil, client.StatusActive),
		key("REVOKED1", 500*day, nil, client.StatusRevoked),
		key("SHORT001", 40*day, &recent, client.StatusActive),
	}
	items := Due(keys, now, DueOptions{Within: 30 * day, Policy: rotate.Policy{Cadences: []rotate.Rule{{Match: "k SHORT*", Cadence: 30 * day}}}})
	var got []string
	for _, it := range items {
		got = append(got, it.Key.ID)
	}
	if strings.Join(got, ",") != "OVERDUE1,SHORT001,SOON0001,UNUSED01" {
		t.Fatalf("due %v", got)
	}
	if !items[0].Overdue || items[2].Overdue || !items[3].Unused || items[0].Unused {
		t.Errorf("flags %+v", items)
	}
	var b strings.Builder
	if err := WriteICS(&b, items, now); err != nil {
		t.Fatal(err)
	}
	cal, err := ics.ParseCalendar(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	evs := cal.Events()
	if len(evs) != 4 || evs[0].Id() != "OVERDUE1@plana" {
		t.Fatalf("events %d, first %q", len(evs), evs[0].Id())
	}
	if start, err := evs[1].GetAllDayStartAt(); err != nil || start.Format("2006-01-02") != "2026-06-01" {
		t.Errorf("SHORT001 (40 days old, 30-day cadence, overdue since 2026-05-22) has its event on %s, want today: %v", start, err)
	}
	if len(evs[0].Alarms()) != 1 || !strings.Contains(b.String(), "TRIGGER:-P7D") {
		t.Error("each event needs a reminder a week before")
	}
}
