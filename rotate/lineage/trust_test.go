package lineage

import (
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

var (
	ana  = client.User{ID: "usr_ana", Email: "ana@example.com", Role: RoleAdmin}
	ben  = client.User{ID: "usr_ben", Email: "ben@example.com", Role: "member"}
	carl = client.User{ID: "usr_carl", Email: "carl@example.com", Role: RoleAdmin}
	dora = client.User{ID: "usr_dora", Email: "dora@example.com", Role: "member"}
)

// TestTrustRule is the rule of issue 19 (A1), case by case: a key succeeds
// another only with the same scopes, made by the old key's issuer, the
// caller or an admin, who is the user its lineage names.
func TestTrustRule(t *testing.T) {
	t0 := day.Add(-400 * 24 * time.Hour)
	adminKey := key("key_old", "Nightly stock sync (2025)", "pa_live_OLD00000", "", t0, client.StatusActive, "stock:read", "stock:write")
	adminKey.CreatedBy = ana
	memberKey := key("key_old", "Webhook relay", "pa_live_OLD00000", "", t0, client.StatusActive, "stock:read")
	memberKey.CreatedBy = ben
	claim := func(by string) string {
		return Claim{OldPrefix: "pa_live_OLD00000", OldName: "Nightly stock sync (2025)", By: by, On: day, Host: "ana-laptop", Reason: "scheduled"}.Description()
	}
	tests := []struct {
		name   string
		old    client.APIKey
		caller client.User
		by     client.User
		desc   string
		scopes []string
		want   verdict
		doubts []string // each must appear in Why, in order
	}{
		{"the issuer's own rotation", adminKey, ana, ana, claim("ana@example.com"), []string{"stock:write", "stock:read"}, believed, nil},
		{"the email's case does not matter", adminKey, ana, ana, claim("ANA@example.com"), []string{"stock:read", "stock:write"}, believed, nil},
		{"another admin, named", adminKey, dora, carl, claim("carl@example.com"), []string{"stock:read", "stock:write"}, believed, nil},
		{"a member rotating his own key", memberKey, ana, ben, claim("ben@example.com"), []string{"stock:read"}, believed, nil},
		{"a member rotating another's key he runs plana for", memberKey, dora, dora, claim("dora@example.com"), []string{"stock:read"}, believed, nil},
		{"issue 19: a member's forgery with fewer scopes naming the admin", adminKey, ana, ben, claim("ana@example.com"), []string{"stock:read"}, doubted,
			[]string{"its scopes (stock:read) are not the old key's (stock:read, stock:write)", "created by ben@example.com (member)", "names ana@example.com, but ben@example.com created it"}},
		{"the right scopes, naming the admin", adminKey, ana, ben, claim("ana@example.com"), []string{"stock:read", "stock:write"}, doubted,
			[]string{"created by ben@example.com (member), who is not the old key's issuer (ana@example.com)", "names ana@example.com, but ben@example.com created it"}},
		{"a member naming himself on the admin's key", adminKey, ana, ben, claim("ben@example.com"), []string{"stock:read", "stock:write"}, doubted,
			[]string{"created by ben@example.com (member)"}},
		{"an admin naming another", adminKey, ana, carl, claim("ana@example.com"), []string{"stock:read", "stock:write"}, doubted,
			[]string{"names ana@example.com, but carl@example.com created it"}},
		{"a member on another member's key, the caller a third", memberKey, ana, dora, claim("dora@example.com"), []string{"stock:read"}, doubted,
			[]string{"created by dora@example.com (member)"}},
		{"users the server did not identify are nobody", client.APIKey{ID: "key_old", Name: "X", Prefix: "pa_live_OLD00000", CreatedAt: t0, Scopes: []string{"a"}, CreatedBy: client.User{Email: "ana@example.com"}},
			client.User{}, client.User{Email: "ana@example.com"}, claim("ana@example.com"), []string{"a"}, doubted, []string{"no known role"}},
		{"another key's lineage", adminKey, ana, ben, strings.Replace(claim("ben@example.com"), "OLD00000", "ZZZZZZZZ", 1), []string{"stock:read"}, noClaim, nil},
		{"made by hand by the issuer", adminKey, ana, ana, "made in the UI", []string{"stock:read", "stock:write"}, believed, nil},
		{"made by hand by a member, named like a successor", adminKey, ana, ben, "", []string{"stock:read", "stock:write"}, doubted,
			[]string{"created by ben@example.com (member)", "named like a successor, with no lineage"}},
		{"made by hand with other scopes: not a claim", adminKey, ana, ben, "", []string{"stock:read"}, noClaim, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "Nightly stock sync (2026)"
			if tt.old.Name == "Webhook relay" {
				name = "Webhook relay (2026)"
			}
			k := key("key_new", name, "pa_live_NEW00000", tt.desc, day, client.StatusActive, tt.scopes...)
			k.CreatedBy = tt.by
			got, _, d := judge(tt.old, k, tt.caller)
			if got != tt.want {
				t.Fatalf("verdict %d, want %d (doubts %q)", got, tt.want, d)
			}
			succ, claimants := Successors(tt.old, []client.APIKey{tt.old, k}, tt.caller)
			if (len(succ) == 1) != (tt.want == believed) || (len(claimants) == 1) != (tt.want == doubted) {
				t.Fatalf("Successors gave %d successors and %d claimants", len(succ), len(claimants))
			}
			why := ""
			if len(claimants) == 1 {
				why = claimants[0].Why()
				if claimants[0].Old.ID != tt.old.ID || claimants[0].Key.ID != k.ID {
					t.Fatalf("claimant %+v", claimants[0])
				}
			}
			rest := why
			for _, want := range tt.doubts {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("why %q lacks %q (in order)", why, want)
				}
				rest = rest[i+len(want):]
			}
			// The family believes what Successors believes.
			f := NewFamily([]client.APIKey{tt.old, k}, tt.caller)
			_, linked := f.Predecessor(k.ID)
			c, isClaimant := f.Doubted(k.ID)
			isClaimant = isClaimant && c.Old.ID == tt.old.ID
			if linked != (tt.want == believed) || isClaimant != (tt.want == doubted) || len(f.Claimants(tt.old.ID)) != len(claimants) {
				t.Fatalf("family: linked %v, claimant %v, %d claimants", linked, isClaimant, len(f.Claimants(tt.old.ID)))
			}
			if isClaimant && c.Why() != why {
				t.Fatalf("family's why %q, Successors' %q", c.Why(), why)
			}
		})
	}
}

// The race rule ranks only trusted successors: a claimant created first
// does not win, and a rotation that saw only claimants has no winner.
func TestWinnerIsNeverAClaimant(t *testing.T) {
	old := key("key_old", "Nightly stock sync (2025)", "pa_live_OLD00000", "", day.Add(-time.Hour), client.StatusActive, "stock:read", "stock:write")
	old.CreatedBy = ana
	forged := key("key_0", "Nightly stock sync (2026)", "pa_live_FORGED00",
		Claim{OldPrefix: old.Prefix, OldName: old.Name, By: "ana@example.com", On: day, Reason: "scheduled"}.Description(), day, client.StatusActive, "stock:read")
	forged.CreatedBy = ben
	if succ, _ := Successors(old, []client.APIKey{old, forged}, ana); len(succ) != 0 {
		t.Fatalf("a forged successor is believed: %v", succ)
	}
	mine := key("key_9", "Nightly stock sync (2026-2)", "pa_live_MINE0000",
		Claim{OldPrefix: old.Prefix, OldName: old.Name, By: "ana@example.com", On: day, Reason: "scheduled"}.Description(), day.Add(time.Minute), client.StatusActive, "stock:read", "stock:write")
	mine.CreatedBy = ana
	succ, claimants := Successors(old, []client.APIKey{forged, old, mine}, ana)
	w, ok := Winner(succ)
	if !ok || w.ID != mine.ID || len(claimants) != 1 || claimants[0].Key.ID != forged.ID {
		t.Fatalf("winner %s %v, claimants %v: want ours, with the forgery a claimant", w.ID, ok, claimants)
	}
	// A family built the same way keeps ours, never the forgery.
	f := NewFamily([]client.APIKey{forged, old, mine}, ana)
	if k, ok := f.Kept(old.ID); !ok || k.ID != mine.ID {
		t.Fatalf("kept %s %v", k.ID, ok)
	}
	if _, s := f.Chain(old.ID); len(s) != 1 || s[0].ID != mine.ID {
		t.Fatalf("chain %v", s)
	}
}

// A forgery that names a key the workspace never had links nothing.
func TestClaimOfAnUnknownKeyIsDoubted(t *testing.T) {
	k := key("key_new", "X (2026)", "pa_live_NEW00000",
		Claim{OldPrefix: "pa_live_GONE0000", OldName: "X", By: "ana@example.com", On: day, Reason: "scheduled"}.Description(), day, client.StatusActive)
	k.CreatedBy = ana
	f := NewFamily([]client.APIKey{k}, ana)
	if _, ok := f.Predecessor(k.ID); ok {
		t.Fatal("linked to a key the workspace does not have")
	}
	if c, ok := f.Doubted(k.ID); !ok || c.Old.Prefix != "pa_live_GONE0000" || !strings.Contains(c.Why(), "does not have") {
		t.Fatalf("claimant %+v %v", c, ok)
	}
}

// Issue 19 (A2): an emergency passes over the successors already there and
// revokes the old key. Every machine then sees the emergency's successor
// as the one kept, not the earlier one it passed over, whoever made that:
// the departed member himself, or the admin before the emergency.
func TestKeptAfterAnEmergencyIsTheEmergencys(t *testing.T) {
	t0 := day.Add(-400 * 24 * time.Hour)
	for _, prepBy := range []client.User{ben, ana} {
		old := key("key_old", "Stock report", "pa_live_OLD00000", "", t0, client.StatusRevoked, "stock:read")
		old.CreatedBy = ben
		revokedAt := day.Add(time.Hour)
		old.RevokedAt, old.RevokedBy = &revokedAt, &ana
		prepared := key("key_0prep", "Stock report (2026)", "pa_live_PREP0000",
			Claim{OldPrefix: old.Prefix, OldName: old.Name, By: prepBy.Email, On: day, Host: "ben-laptop", Reason: "scheduled", Emergency: true}.Description(), day, client.StatusActive, "stock:read")
		prepared.CreatedBy = prepBy
		fresh := key("key_1emer", "Stock report (2026-2)", "pa_live_EMER0000",
			Claim{OldPrefix: old.Prefix, OldName: old.Name, By: "ana@example.com", On: day, Reason: "departed", Emergency: true}.Description(), day.Add(time.Minute), client.StatusActive, "stock:read")
		fresh.CreatedBy = ana
		if prepBy == ana {
			// The admin's own planned rotation, passed over by her emergency.
			prepared.Description = Claim{OldPrefix: old.Prefix, OldName: old.Name, By: "ana@example.com", On: day, Reason: "scheduled"}.Description()
		}
		f := NewFamily([]client.APIKey{old, prepared, fresh}, carl)
		if k, ok := f.Kept(old.ID); !ok || k.ID != fresh.ID {
			t.Errorf("prepared by %s: kept %s, want the emergency's", prepBy.Email, k.ID)
		}
		// Without the emergency's revoke, the race rule decides as ever.
		old.Status, old.RevokedAt, old.RevokedBy = client.StatusActive, nil, nil
		if k, _ := NewFamily([]client.APIKey{old, prepared, fresh}, carl).Kept(old.ID); k.ID != prepared.ID {
			t.Errorf("prepared by %s, old key active: kept %s, want the race winner", prepBy.Email, k.ID)
		}
	}
}

func TestEmergencyIsMarkedAndReadBack(t *testing.T) {
	l := Claim{OldPrefix: "pa_live_AB7K2XYZ", OldName: "x", By: "ana@example.com", On: day, Host: "h", Reason: strings.Repeat("r", 900), Emergency: true}
	d := l.Description()
	if !strings.Contains(d, "on h: emergency: rrr") {
		t.Fatalf("%q", d)
	}
	back, ok := Parse(d)
	if !ok || !back.Emergency || strings.HasPrefix(back.Reason, "emergency") {
		t.Fatalf("parsed %+v", back)
	}
	l.Emergency, l.Reason = false, "scheduled"
	if back, _ := Parse(l.Description()); back.Emergency {
		t.Fatal("a planned rotation read as an emergency")
	}
}
