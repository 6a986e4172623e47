package lineage

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
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

func TestLineageLongNameIsCutToFitAndStillParses(t *testing.T) {
	for _, name := range []string{strings.Repeat("n", 600), strings.Repeat("ü", 600), strings.Repeat("名前 ", 300)} {
		l := Claim{OldPrefix: "pa_test_00000000", OldName: name, By: "ana@example.com", On: day, Reason: "departed"}
		d := l.Description()
		if n := utf8.RuneCountInString(d); n > maxDescription {
			t.Fatalf("description of %d characters, limit %d", n, maxDescription)
		}
		if !utf8.ValidString(d) {
			t.Fatal("cut in the middle of a character")
		}
		back, ok := Parse(d)
		if !ok || back.Reason != "departed" || back.OldPrefix != l.OldPrefix || !strings.HasSuffix(back.OldName, "…") {
			t.Fatalf("parsed %+v ok=%v from %q", back, ok, d)
		}
	}
	// A long reason goes too once the name is gone.
	l := Claim{OldPrefix: "pa_test_00000000", OldName: "x", By: "ana@example.com", On: day, Reason: strings.Repeat("r", 900)}
	if d := l.Description(); utf8.RuneCountInString(d) > maxDescription {
		t.Fatalf("%d characters", utf8.RuneCountInString(d))
	} else if _, ok := Parse(d); !ok {
		t.Fatalf("%q does not parse", d)
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
	return client.APIKey{ID: id, Name: name, Prefix: prefix, Description: desc, CreatedAt: created, Status: status, Scopes: scopes}
}

func TestSuccessorsByLineageThenByName(t *testing.T) {
	t0 := day.Add(-400 * 24 * time.Hour)
	old := key("key_old", "Nightly stock sync (2025)", "pa_live_OLD00000", "", t0, client.StatusActive)
	lin := func(prefix string) string {
		return Claim{OldPrefix: prefix, OldName: "whatever", By: "a@b", On: day, Reason: "scheduled"}.Description()
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
	for _, k := range Successors(old, keys) {
		got = append(got, k.ID)
	}
	want := []string{"key_c", "key_a", "key_b", "key_hand"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("successors %v, want %v", got, want)
	}
	w, ok := Winner(Successors(old, keys))
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
	f.Add("pa_live_AB7K2XYZ", "Nightly stock sync (2025)", "ana@example.com", "scheduled", "")
	f.Add("pa_test_00000000", "x) by y on 2026-01-01: z", "", "a: b", "Rotation of pa_live_AB7K2XYZ () by  on 2026-11-30: ")
	f.Fuzz(func(t *testing.T, prefix, name, by, reason, raw string) {
		// Whatever a hand edit left, parsing never panics and gives back only
		// what the pattern allows.
		if l, ok := Parse(raw); ok && !strings.HasPrefix(raw, "Rotation of "+l.OldPrefix+" (") {
			t.Fatalf("%q parsed as %+v", raw, l)
		}
		if !prefixRe.MatchString(prefix) {
			return
		}
		l := Claim{OldPrefix: prefix, OldName: name, By: by, On: day, Reason: reason}
		d := l.Description()
		if utf8.RuneCountInString(d) > maxDescription || !utf8.ValidString(d) || strings.ContainsAny(d, "\n\r\t") {
			t.Fatalf("description %q", d)
		}
		back, ok := Parse(d)
		if !ok || back.OldPrefix != prefix || !back.On.Equal(day) {
			t.Fatalf("%q parsed as %+v ok=%v", d, back, ok)
		}
		short := utf8.RuneCountInString(d) < maxDescription-2
		if short && (back.OldName != lineageName(name) || back.Reason != oneLine(reason)) {
			t.Fatalf("round trip of %+v gave %+v", l, back)
		}
	})
}
