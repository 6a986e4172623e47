package lineage

import (
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// team is a workspace after two rotations of one key: 2024 → 2025 by hand
// (before plana wrote lineage), 2025 → 2026 by plana, where a second machine
// raced and revoked its own successor.
func team() (keys []client.APIKey, at func(h int) time.Time) {
	at = func(h int) time.Time { return day.Add(time.Duration(h) * time.Hour) }
	bob := client.User{ID: "usr_2", Email: "bob@example.com", Role: RoleAdmin}
	revoked := func(k client.APIKey, t time.Time, by client.User) client.APIKey {
		k.Status, k.RevokedAt, k.RevokedBy = client.StatusRevoked, &t, &by
		return k
	}
	k24 := key("key_24", "Nightly stock sync (2024)", "pa_live_K2400000", "", at(-800), "")
	k25 := key("key_25", "Nightly stock sync (2025)", "pa_live_K2500000", "", at(-400), "")
	k25.CreatedBy = ana
	lin := Claim{OldPrefix: k25.Prefix, OldName: k25.Name, By: "ana@example.com", On: day, Reason: "scheduled"}.Description()
	k26 := key("key_26", "Nightly stock sync (2026)", "pa_live_K2600000", lin, at(1), client.StatusActive)
	k26.CreatedBy = ana
	lost := key("key_lost", "Nightly stock sync (2026-2)", "pa_live_LOST0000", strings.Replace(lin, "ana@", "bob@", 1), at(1).Add(time.Second), "")
	lost.CreatedBy = bob
	other := key("key_x", "Billing export", "pa_live_XXXXXXXX", "", at(-10), client.StatusActive)
	return []client.APIKey{
		revoked(k24, at(-399), ana), revoked(k25, at(30), bob), k26, revoked(lost, at(1).Add(2*time.Second), bob), other,
	}, at
}

func TestChainWalksBothWays(t *testing.T) {
	keys, _ := team()
	ids := func(ks []client.APIKey) string {
		var s []string
		for _, k := range ks {
			s = append(s, k.ID)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct{ id, preds, succs string }{
		{"key_25", "key_24", "key_26"},
		{"key_26", "key_24,key_25", ""},
		{"key_24", "", "key_25,key_26"},
		{"key_lost", "key_24,key_25", ""},
		{"key_x", "", ""},
	} {
		p, s := NewFamily(keys, client.User{}).Chain(c.id)
		if ids(p) != c.preds || ids(s) != c.succs {
			t.Errorf("%s: preds %q succs %q, want %q %q", c.id, ids(p), ids(s), c.preds, c.succs)
		}
	}
}

// A lineage that names its own key, or two keys that name each other,
// must not loop.
func TestChainSurvivesCycles(t *testing.T) {
	a := key("key_a", "A", "pa_live_AAAAAAAA", "", day, client.StatusActive)
	b := key("key_b", "B", "pa_live_BBBBBBBB", "", day, client.StatusActive)
	a.Description = Claim{OldPrefix: b.Prefix, OldName: "B", By: ana.Email, On: day, Reason: "x"}.Description()
	b.Description = Claim{OldPrefix: a.Prefix, OldName: "A", By: ana.Email, On: day, Reason: "x"}.Description()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p, s := NewFamily([]client.APIKey{a, b}, ana).Chain("key_a"); len(p)+len(s) == 0 {
			t.Error("the two claims are not both believed: the cycle is not exercised")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Chain loops on a cycle")
	}
}
