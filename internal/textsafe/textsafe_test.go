package textsafe

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/v1/stock-levels", "/v1/stock-levels"},
		{"stock-sync/1.4 (linux; amd64)", "stock-sync/1.4 (linux; amd64)"},
		{"Lagerbestand – Übersicht 在庫 🙂", "Lagerbestand – Übersicht 在庫 🙂"},
		{`C:\path\x1b`, `C:\path\x1b`},
		// The path: clear the screen, turn red, forge a line.
		{"/v1/\x1b[2J\x1b[31mPWNED\nFAKE-LINE", `/v1/\x1b[2J\x1b[31mPWNED\x0aFAKE-LINE`},
		{"a\rb\tc\x00d\x7fe", `a\x0db\x09c\x00d\x7fe`},
		{"a\u009bb\u0085c", `a\u009bb\u0085c`},
		{"a\u202eevil\u2066b\u2028c", `a\u202eevil\u2066b\u2028c`},
		{"bad \x9b[31m utf-8 \xff", `bad \x9b[31m utf-8 \xff`},
		{"", ""},
	} {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// CleanLines keeps plana's own layout (newlines, tabs) and escapes the rest.
func TestCleanLines(t *testing.T) {
	in := "key Evil \u202eelif (pa_live_X) is revoked:\n\tname\x1b[31m\u009b\rred"
	want := "key Evil \\u202eelif (pa_live_X) is revoked:\n\tname\\x1b[31m\\u009b\\x0dred"
	if got := CleanLines(in); got != want {
		t.Errorf("CleanLines(%q) = %q, want %q", in, got, want)
	}
}

// Whatever goes in, nothing that acts on a terminal comes out.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"/v1/\x1b[2J", "a\nb", "\xff\x9b", "\u202e", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Clean(s)
		if firstUnsafe(out, false) >= 0 || strings.ContainsAny(out, "\x1b\n\r") {
			t.Fatalf("Clean(%q) = %q still holds a control", s, out)
		}
		if firstUnsafe(s, false) < 0 && out != s {
			t.Fatalf("Clean changed safe text %q to %q", s, out)
		}
	})
}

func BenchmarkCleanSafe(b *testing.B) {
	s := "/v1/stock-levels/warehouse-7?sku=A-1"
	b.ReportAllocs()
	for range b.N {
		Clean(s)
	}
}
