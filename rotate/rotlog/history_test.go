package rotlog

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

var day = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func key(id, name, prefix, desc string, created time.Time, status string) client.APIKey {
	return client.APIKey{ID: id, Name: name, Prefix: prefix, Description: desc, CreatedAt: created, Status: status, Scopes: []string{"stock:read"}}
}

// team is a workspace after two rotations of one key: 2024 → 2025 by hand
// (before plana wrote lineage), 2025 → 2026 by plana, where a second machine
// raced and revoked its own successor.
func team() (keys []client.APIKey, at func(h int) time.Time) {
	at = func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	ana := client.User{ID: "usr_1", Email: "ana@example.com"}
	bob := client.User{ID: "usr_2", Email: "bob@example.com", Role: "admin"}
	revoked := func(k client.APIKey, t time.Time, by client.User) client.APIKey {
		k.Status, k.RevokedAt, k.RevokedBy = client.StatusRevoked, &t, &by
		return k
	}
	k24 := key("key_24", "Nightly stock sync (2024)", "pa_live_K2400000", "", at(-800), "")
	k25 := key("key_25", "Nightly stock sync (2025)", "pa_live_K2500000", "", at(-400), "")
	k25.CreatedBy = ana
	lin := lineage.Claim{OldPrefix: k25.Prefix, OldName: k25.Name, By: "ana@example.com", On: day, Reason: "scheduled"}.Description()
	k26 := key("key_26", "Nightly stock sync (2026)", "pa_live_K2600000", lin, at(1), client.StatusActive)
	k26.CreatedBy = ana
	lost := key("key_lost", "Nightly stock sync (2026-2)", "pa_live_LOST0000", strings.Replace(lin, "ana@", "bob@", 1), at(1).Add(time.Second), "")
	lost.CreatedBy = bob
	other := key("key_x", "Billing export", "pa_live_XXXXXXXX", "", at(-10), client.StatusActive)
	return []client.APIKey{
		revoked(k24, at(-399), ana), revoked(k25, at(30), bob), k26, revoked(lost, at(1).Add(2*time.Second), bob), other,
	}, at
}

func rowString(r HistoryRow) string {
	nw := ""
	if r.New != nil {
		nw = r.New.ID
	}
	return fmt.Sprintf("%s %s %s→%s by=%s reason=%s src=%s", r.Time.Format("01-02T15"), r.Event, r.Old.ID, nw, r.Actor, r.Reason, r.Source)
}

func TestServerHistoryFromKeysAlone(t *testing.T) {
	keys, _ := team()
	var got []string
	for _, r := range ServerHistory(keys, client.User{ID: "usr_1"}) {
		got = append(got, rowString(r))
	}
	want := []string{
		"11-13T08 created key_24→key_25 by=ana@example.com reason= src=server", // by hand: linked by name
		"11-13T09 revoked key_24→key_25 by=ana@example.com reason= src=server",
		"11-30T01 created key_25→key_26 by=ana@example.com reason=scheduled src=server",
		"11-30T01 created key_25→key_lost by=bob@example.com reason=scheduled src=server",
		"11-30T01 abandoned key_25→key_lost by=bob@example.com reason=scheduled src=server",
		"12-01T06 revoked key_25→key_26 by=bob@example.com reason=scheduled src=server",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("server history\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestMergeHistoryDedupesWhatBothSaw(t *testing.T) {
	keys, at := team()
	k25, k26 := ref.Of(keys[1]), ref.Of(keys[2])
	actor := ref.Actor{Email: "ana@example.com", Local: "ana@laptop"}
	local := LocalHistory([]Entry{
		// The local clock of the log is the server's Date header: a second
		// off the key's created_at, and still the same fact.
		{Time: at(1).Add(time.Second), Event: EventCreated, Old: k25, New: &k26, Reason: "scheduled", Actor: actor},
		{Time: at(2), Event: EventDeployed, Old: k25, New: &k26, Reason: "scheduled", Actor: actor, Detail: "env-file"},
	})
	got := MergeHistory(local, ServerHistory(keys, client.User{ID: "usr_1"}))
	var lines []string
	for _, r := range got {
		lines = append(lines, rowString(r))
	}
	want := []string{
		"11-13T08 created key_24→key_25 by=ana@example.com reason= src=server",
		"11-13T09 revoked key_24→key_25 by=ana@example.com reason= src=server",
		"11-30T01 created key_25→key_26 by=ana@example.com (ana@laptop) reason=scheduled src=local+server",
		"11-30T01 created key_25→key_lost by=bob@example.com reason=scheduled src=server",
		"11-30T01 abandoned key_25→key_lost by=bob@example.com reason=scheduled src=server",
		"11-30T02 deployed key_25→key_26 by=ana@example.com (ana@laptop) reason=scheduled src=local",
		"12-01T06 revoked key_25→key_26 by=bob@example.com reason=scheduled src=server",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("merged\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if !got[2].Time.Equal(at(1).Add(time.Second)) {
		t.Fatalf("a fact both saw keeps the local line's time, got %v", got[2].Time)
	}
	// An abort logged here is the server's "abandoned": one row.
	lost := ref.Of(keys[3])
	aborted := LocalHistory([]Entry{{Time: at(1), Event: EventAborted, Old: k25, New: &lost, Reason: "wrong key", Actor: actor}})
	n := 0
	for _, r := range MergeHistory(aborted, ServerHistory(keys, client.User{ID: "usr_1"})) {
		if r.New != nil && r.New.ID == "key_lost" && r.Event != EventCreated {
			n++
			if r.Event != EventAborted || r.Source != SourceBoth || r.Reason != "wrong key" {
				t.Fatalf("abort row %s", rowString(r))
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d rows for the end of key_lost, want 1", n)
	}
}

// Two keys whose claims name each other must not loop.
func TestServerHistorySurvivesCycles(t *testing.T) {
	a := key("key_a", "A", "pa_live_AAAAAAAA", "", day, client.StatusActive)
	b := key("key_b", "B", "pa_live_BBBBBBBB", "", day, client.StatusActive)
	ana := client.User{ID: "usr_1", Email: "ana@example.com"}
	a.CreatedBy, b.CreatedBy = ana, ana
	a.Description = lineage.Claim{OldPrefix: b.Prefix, OldName: "B", By: ana.Email, On: day, Reason: "x"}.Description()
	b.Description = lineage.Claim{OldPrefix: a.Prefix, OldName: "A", By: ana.Email, On: day, Reason: "x"}.Description()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(ServerHistory([]client.APIKey{a, b}, ana)) != 2 {
			t.Error("the two claims are not both believed: the cycle is not exercised")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ServerHistory loops on a cycle")
	}
}

// A member's forged successor (issue 19, A1) is no rotation: the history
// has no row for it, whoever looks.
func TestServerHistoryLeavesClaimantsOut(t *testing.T) {
	keys, at := team()
	forged := key("key_forged", "Nightly stock sync (2026-3)", "pa_live_FORGED00",
		lineage.Claim{OldPrefix: "pa_live_K2600000", OldName: "Nightly stock sync (2026)", By: "ana@example.com", On: day, Reason: "scheduled"}.Description(), at(5), client.StatusActive)
	forged.CreatedBy = client.User{ID: "usr_3", Email: "eve@example.com", Role: "member"}
	keys = append(keys, forged)
	for _, caller := range []client.User{{ID: "usr_1"}, {}} {
		for _, r := range ServerHistory(keys, caller) {
			if r.New != nil && r.New.ID == forged.ID || r.Old.ID == forged.ID {
				t.Errorf("caller %q: the forgery is in the history: %s", caller.ID, rowString(r))
			}
		}
	}
}
