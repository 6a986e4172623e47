package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"
	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
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
	items := Due(keys, now, DueOptions{Within: 30 * day, Overrides: map[string]time.Duration{"k SHORT001": 30 * day}})
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

func TestRotateIssuedBy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ben, _ := w.srv.CreateUser(ctx, "ben@example.com", "member", []string{"orders:write"})
	var bens []client.APIKey
	for _, name := range []string{"Webhook relay", "Orders export (2025)"} {
		_, k, err := w.srv.MintKey(ctx, ben.ID, name, []string{"orders:write"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		bens = append(bens, k)
	}
	res, err := w.rotator().RotateIssuedBy(ctx, "BEN@example.com", Options{Emergency: ReasonDeparted, NoWait: true})
	if !errors.Is(err, ErrPending) || res.Pending != 2 || res.Failed != 0 {
		t.Fatalf("want both pending on first use, got %v %+v", err, res)
	}
	for _, k := range bens {
		if w.key(k.ID).Active() {
			t.Errorf("%s still active", k.Name)
		}
	}
	if !w.key(w.old.ID).Active() {
		t.Error("a key issued by someone else was revoked")
	}
	// The automations pick up their new keys; a second run finishes.
	for _, it := range res.Items {
		p, _ := w.store.Get(secret.KeyName(it.Result.New.ID))
		if err := w.call("relay/2", p); err != nil {
			t.Fatal(err)
		}
	}
	res, err = w.rotator().RotateIssuedBy(ctx, "ben@example.com", Options{NoWait: true})
	if err != nil || res.Done != 2 {
		t.Fatalf("resume: %v %+v", err, res)
	}
}

func TestRebuildDamagedJournal(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	opts := fastOpts(w)
	opts.NoWait = true
	res, _ := w.rotator().Rotate(ctx, w.old, opts)
	js := w.rotator().journals()
	os.WriteFile(js.path(w.old.ID), []byte("\x00garbage"), 0o600)
	if _, err := w.rotator().Rotate(ctx, w.old, opts); err == nil {
		t.Fatal("a damaged journal must stop the run")
	}
	rb, err := w.rotator().Rebuild(ctx, w.old, opts)
	if err != nil || rb.New == nil || rb.New.ID != res.New.ID {
		t.Fatalf("rebuild: %v %+v", err, rb)
	}
	if _, err := os.Stat(js.path(w.old.ID) + ".damaged"); err != nil {
		t.Error("the damaged journal must be kept aside")
	}
	newPlain, _ := w.store.Get(secret.KeyName(res.New.ID))
	if err := w.call("stock-sync/1.4", newPlain); err != nil {
		t.Fatal(err)
	}
	w.srv.Advance(2 * time.Hour)
	opts.Yes = true
	if r, err := w.rotator().Rotate(ctx, w.old, opts); err != nil || !r.Done {
		t.Fatalf("after rebuild: %v", err)
	}
	if n := len(w.successors(client.StatusAll)); n != 1 {
		t.Errorf("%d successors after a rebuild", n)
	}
}

// A rebuilt journal records every --to given, made absolute like a run's:
// the next run deploys and finalizes each of them.
func TestRebuildKeepsEveryTarget(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	opts := fastOpts(w)
	opts.NoWait = true
	if _, err := w.rotator().Rotate(ctx, w.old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("want a rotation waiting: %v", err)
	}
	js := w.rotator().journals()
	os.WriteFile(js.path(w.old.ID), []byte("\x00garbage"), 0o600)
	dir := t.TempDir()
	t.Chdir(dir)
	second := filepath.Join(dir, "us.env")
	opts.Target, opts.Targets = "", []string{"env-file:" + w.envPath, "env-file:us.env"}
	if _, err := w.rotator().Rebuild(ctx, w.old, opts); err != nil {
		t.Fatal(err)
	}
	j, err := js.load(w.old.ID)
	if err != nil || j == nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range j.Targets {
		got = append(got, st.Target)
	}
	if want := []string{"env-file:" + w.envPath, "env-file:" + second}; !slices.Equal(got, want) {
		t.Errorf("rebuilt journal's targets %q, want %q", got, want)
	}
}
