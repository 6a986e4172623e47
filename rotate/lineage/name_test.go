package lineage

import "testing"

func TestSuccessorName(t *testing.T) {
	tests := []struct {
		old   string
		taken []string
		want  string
	}{
		{"Nightly stock sync (2025)", nil, "Nightly stock sync (2026)"},
		{"Nightly stock sync", nil, "Nightly stock sync (2026)"},
		{"Nightly stock sync (2026)", []string{"Nightly stock sync (2026)"}, "Nightly stock sync (2026-2)"},
		{"Nightly stock sync (2026-2)", []string{"Nightly stock sync (2026)", "Nightly stock sync (2026-2)"}, "Nightly stock sync (2026-3)"},
		{"Webhook relay (v2)", nil, "Webhook relay (v2) (2026)"},
		{"  padded (2024)  ", nil, "padded (2026)"},
		{"(2025)", nil, "(2026)"},
		{"", nil, "(2026)"},
	}
	for _, tt := range tests {
		t.Run(tt.old, func(t *testing.T) {
			set := map[string]bool{}
			for _, n := range tt.taken {
				set[n] = true
			}
			if got := SuccessorName(tt.old, 2026, func(s string) bool { return set[s] }); got != tt.want {
				t.Errorf("SuccessorName(%q) = %q, want %q", tt.old, got, tt.want)
			}
		})
	}
}

func FuzzSuccessorName(f *testing.F) {
	f.Add("Nightly stock sync (2025)", 2026, 3)
	f.Add("x (1999-7)", 2000, 0)
	f.Fuzz(func(t *testing.T, old string, year, takenN int) {
		if year < 1000 || year > 9999 || takenN < 0 || takenN > 50 {
			t.Skip()
		}
		taken := map[string]bool{old: true}
		got := SuccessorName(old, year, func(s string) bool { return taken[s] })
		if taken[got] {
			t.Fatalf("%q is taken", got)
		}
		if !IsSuccessorName(old, got) {
			t.Fatalf("%q does not look like a successor of %q", got, old)
		}
		for i := 0; i < takenN; i++ {
			taken[got] = true
			next := SuccessorName(old, year, func(s string) bool { return taken[s] })
			if taken[next] {
				t.Fatalf("%q is taken", next)
			}
			got = next
		}
	})
}
