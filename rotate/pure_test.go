package rotate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

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
		if !isSuccessorName(old, got) {
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

func TestSuggestQuietPeriod(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	every := func(n int, d time.Duration) []time.Time {
		var ts []time.Time
		for i := 0; i < n; i++ {
			ts = append(ts, t0.Add(time.Duration(i)*d))
		}
		return ts
	}
	tests := []struct {
		name  string
		calls []time.Time
		want  time.Duration
	}{
		{"no history", nil, 24 * time.Hour},
		{"one call", every(1, time.Hour), 24 * time.Hour},
		{"nightly", every(30, 24*time.Hour), 48 * time.Hour},
		{"continuous worker", every(100, time.Second), time.Hour},
		{"weekly", every(4, 7*24*time.Hour), 7 * 24 * time.Hour},
		{"rounded up to the hour", []time.Time{t0, t0.Add(90 * time.Minute)}, 3 * time.Hour},
		{"unsorted", []time.Time{t0.Add(5 * time.Hour), t0, t0.Add(time.Hour)}, 8 * time.Hour},
	}
	for _, tt := range tests {
		if got := SuggestQuietPeriod(tt.calls); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestEnvFileEditor(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"adds after PLANA_KEY", "A=1\nPLANA_KEY=old\nB=2\n", "A=1\nPLANA_KEY=old\nPLANA_KEY_NEW=new\nB=2\n"},
		{"replaces in place", "export PLANA_KEY_NEW = x\r\nPLANA_KEY=old\r\n", "export PLANA_KEY_NEW =new\r\nPLANA_KEY=old\r\n"},
		{"no trailing newline", "# c\nPLANA_KEY=old", "# c\nPLANA_KEY=old\nPLANA_KEY_NEW=new"},
		{"CRLF file, appended", "# c\r\nX=1\r\n", "# c\r\nX=1\r\nPLANA_KEY_NEW=new\r\n"},
		{"drops duplicates", "PLANA_KEY_NEW=a\nPLANA_KEY_NEW=b\n", "PLANA_KEY_NEW=new\n"},
		{"empty", "", "PLANA_KEY_NEW=new\n"},
		{"lookalike names untouched", "PLANA_KEY_NEWER=1\n#PLANA_KEY_NEW=2\n", "PLANA_KEY_NEWER=1\n#PLANA_KEY_NEW=2\nPLANA_KEY_NEW=new\n"},
	}
	for _, tt := range tests {
		if got := string(SetEnv([]byte(tt.in), EnvKeyNew, "new", EnvKey)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := string(UnsetEnv([]byte("# c\nPLANA_KEY=old\nPLANA_KEY_NEW=new"), EnvKeyNew)); got != "# c\nPLANA_KEY=old" {
		t.Errorf("unset of the unterminated last line: %q", got)
	}
	if v, ok := LookupEnv([]byte("PLANA_KEY='q'\n"), EnvKey); !ok || v != "q" {
		t.Errorf("lookup strips quotes: %q %v", v, ok)
	}
}

func FuzzEnvFileRoundTrip(f *testing.F) {
	f.Add([]byte("# comment\r\nPLANA_KEY=old\r\nOTHER=x"))
	f.Add([]byte("PLANA_KEY_NEW=a\nexport PLANA_KEY=b\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const v = "pa_live_VALUE"
		set := SetEnv(in, EnvKeyNew, v, EnvKey)
		if got, ok := LookupEnv(set, EnvKeyNew); !ok || got != v {
			t.Fatalf("after SetEnv, lookup = %q %v", got, ok)
		}
		// Every other line survives byte for byte, in order.
		if a, b := UnsetEnv(set, EnvKeyNew), UnsetEnv(in, EnvKeyNew); !bytes.Equal(a, b) {
			t.Fatalf("other lines changed:\n%q\n%q", a, b)
		}
		if again := SetEnv(set, EnvKeyNew, v, EnvKey); !bytes.Equal(again, set) {
			t.Fatal("setting the same value again changed the file")
		}
	})
}

func TestEnvFileDeployAndFinalize(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app.env")
	const oldK, newK = "pa_live_OLD", "pa_live_NEW"
	orig := "# prod\r\nexport PLANA_KEY=" + oldK + "\r\nDB=postgres://x\r\n"
	os.WriteFile(p, []byte(orig), 0o644)
	f := EnvFile{Path: p}
	if changed, err := f.Deploy(newK); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if changed, err := f.Deploy(newK); err != nil || changed {
		t.Fatal("re-deploying the same key must be a no-op", changed, err)
	}
	got, _ := os.ReadFile(p)
	if want := "# prod\r\nexport PLANA_KEY=" + oldK + "\r\nPLANA_KEY_NEW=" + newK + "\r\nDB=postgres://x\r\n"; string(got) != want {
		t.Fatalf("deploy: %q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want the file's own 0644 kept", fi.Mode().Perm())
	}
	if changed, err := f.Finalize(newK); err != nil || !changed {
		t.Fatal(changed, err)
	}
	got, _ = os.ReadFile(p)
	if want := "# prod\r\nexport PLANA_KEY=" + newK + "\r\nDB=postgres://x\r\n"; string(got) != want {
		t.Fatalf("finalize: %q", got)
	}
	if changed, err := f.Finalize(newK); err != nil || changed {
		t.Fatal("finalizing twice must be a no-op", changed, err)
	}

	link := filepath.Join(dir, "link.env")
	os.Symlink(p, link)
	if _, err := (EnvFile{Path: link}).Deploy(newK); err == nil || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), p) {
		t.Errorf("symlink: %v", err)
	}
	if _, err := (EnvFile{Path: filepath.Join(dir, "missing.env")}).Deploy(newK); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro.env")
		os.WriteFile(ro, nil, 0o400)
		if _, err := (EnvFile{Path: ro}).Deploy(newK); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("read-only file: %v", err)
		}
	}
}

func TestExecTargetGetsKeyOnStdinOnly(t *testing.T) {
	dir := t.TempDir()
	key := client.FormatKey("live", "AB7K2XYZ", strings.Repeat("s", 32))
	t.Setenv("PLANA_TOKEN", "management-token")
	cmd := `cat > "$OUT/stdin"; env > "$OUT/env"; cat /proc/$$/cmdline > "$OUT/argv"`
	t.Setenv("OUT", dir)
	if _, err := deployTo(context.Background(), Target{Kind: TargetExec, Arg: cmd}, key, nil, 5*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	if string(got) != key+"\n" {
		t.Error("the command did not get the key on stdin")
	}
	for _, f := range []string{"env", "argv"} {
		data, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(data, []byte(key)) {
			t.Errorf("the key is in the command's %s", f)
		}
		if f == "env" && bytes.Contains(data, []byte("management-token")) {
			t.Error("the management token leaked into the deploy command's environment")
		}
	}
	err := runExec(context.Background(), `read k; echo "bad key $k" >&2; exit 3`, key, 5*time.Second, nil)
	if err == nil || strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "bad key pa_live_AB7K2XYZ") {
		t.Errorf("failure must carry the redacted stderr tail: %v", err)
	}
	err = runExec(context.Background(), `sleep 5`, key, 50*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("timeout: %v", err)
	}
	if _, err := ParseTarget("ftp:x"); err == nil {
		t.Error("unknown target accepted")
	}
}

func TestRotationLogChain(t *testing.T) {
	dir := t.TempDir()
	l := OpenLog(dir)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, ev := range []string{EventCreated, EventDeployed, EventRevoked, EventRotated} {
		if _, err := l.Append(LogEntry{Time: base.Add(time.Duration(i) * time.Minute), Event: ev, Old: KeyRef{ID: "key_1", Prefix: "pa_live_AAAAAAAA"},
			New: &KeyRef{ID: "key_2"}, Reason: ReasonScheduled, Actor: Actor{Email: "ana@example.com", Local: "ana@box"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(l.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v", fi.Mode().Perm())
	}
	orig, _ := os.ReadFile(l.Path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(orig), "\n"), "\n")
	tamper := map[string]string{
		"edited":   strings.Replace(string(orig), "ana@example.com", "eve@example.com", 1),
		"deleted":  lines[0] + strings.Join(lines[2:], ""),
		"inserted": lines[0] + lines[1] + lines[1] + strings.Join(lines[2:], ""),
		"swapped":  lines[1] + lines[0] + strings.Join(lines[2:], ""),
		// The chain alone holds after these; the head file catches them.
		"last deleted": strings.Join(lines[:3], ""),
		"emptied":      "",
	}
	for name, data := range tamper {
		os.WriteFile(l.Path, []byte(data), 0o600)
		var ce *ChainError
		if err := l.Verify(); !errors.As(err, &ce) {
			t.Errorf("%s line not detected: %v", name, err)
		}
	}
	os.Remove(l.Path)
	if err := l.Verify(); err == nil {
		t.Error("a deleted log file not detected")
	}
	// A crash between the append and the head's update leaves one line the
	// head does not know yet: that is not tampering.
	os.WriteFile(l.Path, orig, 0o600)
	var e3 LogEntry
	json.Unmarshal([]byte(lines[2]), &e3)
	if err := l.writeHead(logHead{Entries: 3, Hash: e3.Hash}); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(); err != nil {
		t.Errorf("an append the head missed is reported: %v", err)
	}
}
