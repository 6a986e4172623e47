package fleet

import (
	"regexp"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/plana-cli/plana/client"
)

// The calendar follows RFC 5545 (CRLF line ends), and nothing in it lies
// before today: an overdue key's event is today, and a reminder that would
// be in the past fires later today.
func TestICSLinesAndDatesFromToday(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 20, 0, 0, time.UTC)
	day := 24 * time.Hour
	recent := now.Add(-time.Hour)
	key := func(id string, age time.Duration) client.APIKey {
		return client.APIKey{ID: id, Name: "k " + id, Prefix: "pa_live_" + id, Status: client.StatusActive, CreatedAt: now.Add(-age), LastUsedAt: &recent}
	}
	items := Due([]client.APIKey{
		key("OVERDUE1", 400*day),     // due 2026-04-27
		key("SOON0001", 362*day),     // due in 3 days
		key("LATER001", 345*day),     // due in 20 days
		key("LONGLINE", 400*day+day), // a long summary, to fold
	}, now, DueOptions{Within: 30 * day})
	items[3].Key.Name = strings.Repeat("a long name ", 12)
	var b strings.Builder
	if err := WriteICS(&b, items, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if n, crlf := strings.Count(out, "\n"), strings.Count(out, "\r\n"); n == 0 || n != crlf {
		t.Errorf("%d of %d lines end in CRLF, want all (RFC 5545)", crlf, n)
	}
	cal, err := ics.ParseCalendar(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ start, trigger string }{
		"OVERDUE1@plana": {"20260601", "TRIGGER;VALUE=DATE-TIME:20260601T130000Z"},
		"SOON0001@plana": {"20260604", "TRIGGER;VALUE=DATE-TIME:20260601T130000Z"},
		"LATER001@plana": {"20260621", "TRIGGER:-P7D"},
	}
	for _, ev := range cal.Events() {
		w, ok := want[ev.Id()]
		if !ok {
			continue
		}
		start, err := ev.GetAllDayStartAt()
		if err != nil || start.Format("20060102") != w.start {
			t.Errorf("%s starts %s, want %s (%v)", ev.Id(), start, w.start, err)
		}
		var got []string
		for _, a := range ev.Alarms() {
			if p := a.GetProperty(ics.ComponentPropertyTrigger); p != nil {
				tr := "TRIGGER"
				if v := p.ICalParameters["VALUE"]; len(v) > 0 {
					tr += ";VALUE=" + v[0]
				}
				got = append(got, tr+":"+p.Value)
			}
		}
		if len(got) != 1 || got[0] != w.trigger {
			t.Errorf("%s alarms %q, want %s", ev.Id(), got, w.trigger)
		}
	}
	if !strings.Contains(out, "overdue since 2026-04-27") {
		t.Error("an overdue key's event does not say since when it is overdue")
	}
	// No date in the file before today.
	for _, m := range regexp.MustCompile(`(?m)^(DTSTART|TRIGGER)[^:]*:(\d{8})`).FindAllStringSubmatch(out, -1) {
		if m[2] < "20260601" {
			t.Errorf("%s lies before today: %s", m[1], m[0])
		}
	}
}

// A key listed only because it is unused is not called due.
func TestDueStateWording(t *testing.T) {
	tests := []struct {
		it   DueItem
		want string
	}{
		{DueItem{Due: true, Overdue: true}, "overdue"},
		{DueItem{Due: true}, "due soon"},
		{DueItem{Due: true, Overdue: true, Unused: true}, "overdue, unused: revoke?"},
		{DueItem{Due: true, Unused: true}, "due soon, unused: revoke?"},
		{DueItem{Unused: true}, "unused: revoke?"},
	}
	for _, tt := range tests {
		if got := tt.it.State(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.it, got, tt.want)
		}
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	unused := client.APIKey{ID: "UNUSED01", Status: client.StatusActive, CreatedAt: now.Add(-100 * 24 * time.Hour)}
	items := Due([]client.APIKey{unused}, now, DueOptions{Within: 30 * 24 * time.Hour})
	if len(items) != 1 || items[0].Due || items[0].State() != "unused: revoke?" {
		t.Errorf("a key unused for 100 days and due in 265: %+v, %q", items, items[0].State())
	}
}
