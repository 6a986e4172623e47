package lineage

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/textsafe"
)

var day = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func TestLineageDescriptionIsTheDocumentedSentence(t *testing.T) {
	l := Claim{OldPrefix: "pa_live_AB7K2XYZ", OldName: "Nightly stock sync (2025)", By: "ana@example.com", On: day.Add(15 * time.Hour), Reason: "scheduled"}
	want := "Rotation of pa_live_AB7K2XYZ (Nightly stock sync (2025)) by ana@example.com on 2026-11-30: scheduled"
	if got := l.Description(); got != want {
		t.Fatalf("description\n got %q\nwant %q", got, want)
	}
	back, ok := Parse(want)
	if !ok {
		t.Fatal("the documented sentence does not parse")
	}
	l.On = day
	if back != l {
		t.Fatalf("parsed %+v, want %+v", back, l)
	}
}

// Issue 21 §2: the lineage names the machine whose keyring received the
// plaintext; a description written before it did still parses.
func TestLineageNamesTheMachine(t *testing.T) {
	l := Claim{OldPrefix: "pa_live_AB7K2XYZ", OldName: "Nightly stock sync (2025)", By: "ana@example.com", On: day, Host: "ana-laptop.corp_1", Reason: "lost: the laptop"}
	want := "Rotation of pa_live_AB7K2XYZ (Nightly stock sync (2025)) by ana@example.com on 2026-11-30 on ana-laptop.corp_1: lost: the laptop"
	if got := l.Description(); got != want {
		t.Fatalf("description\n got %q\nwant %q", got, want)
	}
	if back, ok := Parse(want); !ok || back != l {
		t.Fatalf("parsed %+v ok=%v, want %+v", back, ok, l)
	}
	old := "Rotation of pa_live_AB7K2XYZ (Nightly stock sync (2025)) by ana@example.com on 2026-11-30: on ana-laptop: x"
	if back, ok := Parse(old); !ok || back.Host != "" || back.Reason != "on ana-laptop: x" {
		t.Fatalf("a description without a host parsed as %+v ok=%v", back, ok)
	}
	// Whatever a caller passes, the host keeps to a host name's alphabet and
	// length, so the description still parses to it.
	for in, want := range map[string]string{
		"  host\nwith: spaces ":      "host-with--spaces",
		"-._lead":                    "lead",
		strings.Repeat("h", 200):     strings.Repeat("h", textsafe.MaxHostName),
		"名前":                         "",
		"":                           "",
		"ok) by eve on 2026-01-01: ": "ok--by-eve-on-2026-01-01-",
	} {
		l.Host = in
		back, ok := Parse(l.Description())
		if !ok || back.Host != want || back.Reason != l.Reason {
			t.Errorf("host %q: parsed %+v ok=%v, want host %q", in, back, ok, want)
		}
	}
}

func TestLineageLongNameIsCutToFitAndStillParses(t *testing.T) {
	for _, name := range []string{strings.Repeat("n", 600), strings.Repeat("ü", 600), strings.Repeat("名前 ", 300)} {
		l := Claim{OldPrefix: "pa_test_00000000", OldName: name, By: "ana@example.com", On: day, Host: strings.Repeat("h", textsafe.MaxHostName), Reason: "departed"}
		d := l.Description()
		if n := utf8.RuneCountInString(d); n > maxDescription {
			t.Fatalf("description of %d characters, limit %d", n, maxDescription)
		}
		if !utf8.ValidString(d) {
			t.Fatal("cut in the middle of a character")
		}
		back, ok := Parse(d)
		if !ok || back.Reason != "departed" || back.OldPrefix != l.OldPrefix || back.Host != l.Host || !strings.HasSuffix(back.OldName, "…") {
			t.Fatalf("parsed %+v ok=%v from %q", back, ok, d)
		}
	}
	// A long reason goes too once the name is gone.
	// A long reason goes too once the name is gone, and an email past any
	// real one's length last; the host is never cut.
	for _, by := range []string{"ana@example.com", strings.Repeat("e", 600) + "@example.com"} {
		l := Claim{OldPrefix: "pa_test_00000000", OldName: "x", By: by, On: day, Host: strings.Repeat("h", textsafe.MaxHostName), Reason: strings.Repeat("r", 900)}
		d := l.Description()
		if utf8.RuneCountInString(d) > maxDescription {
			t.Fatalf("%d characters", utf8.RuneCountInString(d))
		}
		if back, ok := Parse(d); !ok || back.Host != l.Host {
			t.Fatalf("%q does not parse to the host: %+v", d, back)
		}
	}
}

func TestLineageKeepsToOneLine(t *testing.T) {
	l := Claim{OldPrefix: "pa_live_AB7K2XYZ", OldName: "a\tb", By: "ana@example.com", On: day, Reason: "lost\nlaptop\x00"}
	d := l.Description()
	if strings.ContainsAny(d, "\n\t\x00") {
		t.Fatalf("control characters in %q", d)
	}
	if back, ok := Parse(d); !ok || back.Reason != "lost laptop" {
		t.Fatalf("parsed %+v ok=%v", back, ok)
	}
}

func TestParseRefusesWhatItDidNotWrite(t *testing.T) {
	for _, d := range []string{
		"",
		"rotated",
		"Nightly stock sync",
		"rotation of pa_live_AB7K2XYZ (x) by a@b on 2026-11-30: scheduled",   // case edited
		"Rotation of pa_live_AB7K2XY (x) by a@b on 2026-11-30: scheduled",    // prefix cut
		"Rotation of pa_live_AB7K2XYZ (x) by a@b on 2026-13-30: scheduled",   // no such month
		"Rotation of pa_live_AB7K2XYZ (x) by a@b on 2026-11-30",              // reason gone
		"Rotation of pa_live_AB7K2XYZ (x) by a@b on 2026-11-30: a\nsecond",   // a line added
		"Note: Rotation of pa_live_AB7K2XYZ (x) by a@b on 2026-11-30: sched", // text before
	} {
		if l, ok := Parse(d); ok {
			t.Errorf("%q parsed as %+v", d, l)
		}
	}
}

func key(id, name, prefix, desc string, created time.Time, status string, scopes ...string) client.APIKey {
	if scopes == nil {
		scopes = []string{"stock:read"}
	}
	return client.APIKey{ID: id, Name: name, Prefix: prefix, Description: desc, CreatedAt: created, Status: status, Scopes: scopes, CreatedBy: ana}
}

func TestSuccessorsByLineageThenByName(t *testing.T) {
	t0 := day.Add(-400 * 24 * time.Hour)
	old := key("key_old", "Nightly stock sync (2025)", "pa_live_OLD00000", "", t0, client.StatusActive)
	lin := func(prefix string) string {
		return Claim{OldPrefix: prefix, OldName: "whatever", By: "ana@example.com", On: day, Reason: "scheduled"}.Description()
	}
	keys := []client.APIKey{
		old,
		key("key_b", "Nightly stock sync (2026)", "pa_live_BBBBBBBB", lin("pa_live_OLD00000"), day.Add(time.Second), client.StatusActive),
		key("key_a", "Nightly stock sync (2026-2)", "pa_live_AAAAAAAA", lin("pa_live_OLD00000"), day.Add(time.Second), client.StatusActive),
		key("key_c", "Nightly stock sync (2026-3)", "pa_live_CCCCCCCC", lin("pa_live_OLD00000"), day, client.StatusRevoked),
		// Named like a successor, but its lineage names another key.
		key("key_other", "Nightly stock sync (2026-4)", "pa_live_OTHER000", lin("pa_live_ZZZZZZZZ"), day, client.StatusActive),
		// Made by hand: no lineage, the year-suffix name, the same scopes.
		key("key_hand", "Nightly stock sync (2027)", "pa_live_HAND0000", "made in the UI", day.Add(time.Hour), client.StatusActive),
		// Same name rule but other scopes, or older than the key: not successors.
		key("key_scopes", "Nightly stock sync (2027-2)", "pa_live_SCOPES00", "", day, client.StatusActive, "stock:write"),
		key("key_before", "Nightly stock sync (2024)", "pa_live_BEFORE00", "", t0.Add(-time.Hour), client.StatusRevoked),
	}
	var got []string
	succ, claimants := Successors(old, keys, ana)
	if len(claimants) != 0 {
		t.Fatalf("claimants %v among the issuer's own keys", claimants)
	}
	for _, k := range succ {
		got = append(got, k.ID)
	}
	want := []string{"key_c", "key_a", "key_b", "key_hand"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("successors %v, want %v", got, want)
	}
	w, ok := Winner(succ)
	if !ok || w.ID != "key_a" {
		t.Fatalf("winner %v %v: the revoked key_c is out, key_a and key_b tie on created_at and the smaller id wins", w.ID, ok)
	}
	if _, ok := Winner(nil); ok {
		t.Fatal("a winner among no candidates")
	}
}

// Every machine must pick the same winner whatever order its list came in.
func TestWinnerIgnoresListOrder(t *testing.T) {
	ks := []client.APIKey{
		key("key_3", "", "", "", day.Add(2*time.Second), client.StatusActive),
		key("key_2", "", "", "", day.Add(time.Second), client.StatusActive),
		key("key_1", "", "", "", day.Add(time.Second), client.StatusActive),
		key("key_0", "", "", "", day, client.StatusRevoked),
	}
	for i := range ks {
		rot := append(append([]client.APIKey{}, ks[i:]...), ks[:i]...)
		if w, _ := Winner(rot); w.ID != "key_1" {
			t.Fatalf("order %d: winner %s", i, w.ID)
		}
	}
}

var prefixRe = regexp.MustCompile(`^pa_(live|test)_[0-9A-Za-z]{8}$`)

func FuzzParse(f *testing.F) {
	f.Add("pa_live_AB7K2XYZ", "Nightly stock sync (2025)", "ana@example.com", "ana-laptop", "scheduled", "")
	f.Add("pa_test_00000000", "x) by y on 2026-01-01: z", "", "h: x", "a: b", "Rotation of pa_live_AB7K2XYZ () by  on 2026-11-30 on h: ")
	f.Fuzz(func(t *testing.T, prefix, name, by, host, reason, raw string) {
		// Whatever a hand edit left, parsing never panics and gives back only
		// what the pattern allows.
		if l, ok := Parse(raw); ok && !strings.HasPrefix(raw, "Rotation of "+l.OldPrefix+" (") {
			t.Fatalf("%q parsed as %+v", raw, l)
		}
		if !prefixRe.MatchString(prefix) {
			return
		}
		l := Claim{OldPrefix: prefix, OldName: name, By: by, On: day, Host: host, Reason: reason}
		d := l.Description()
		if utf8.RuneCountInString(d) > maxDescription || !utf8.ValidString(d) || strings.ContainsAny(d, "\n\r\t") {
			t.Fatalf("description %q", d)
		}
		back, ok := Parse(d)
		if !ok || back.OldPrefix != prefix || !back.On.Equal(day) || back.Host != textsafe.HostName(host) {
			t.Fatalf("%q parsed as %+v ok=%v", d, back, ok)
		}
		short := utf8.RuneCountInString(d) < maxDescription-2
		if short && (back.OldName != lineageName(name) || back.Reason != oneLine(reason)) {
			t.Fatalf("round trip of %+v gave %+v", l, back)
		}
	})
}
