package target

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

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
		if got := string(SetEnv([]byte(tt.in), NewKeySlot, "new", KeySlot)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := string(UnsetEnv([]byte("# c\nPLANA_KEY=old\nPLANA_KEY_NEW=new"), NewKeySlot)); got != "# c\nPLANA_KEY=old" {
		t.Errorf("unset of the unterminated last line: %q", got)
	}
	if v, ok := LookupEnv([]byte("PLANA_KEY='q'\n"), KeySlot); !ok || v != "q" {
		t.Errorf("lookup strips quotes: %q %v", v, ok)
	}
}

func FuzzEnvFileRoundTrip(f *testing.F) {
	f.Add([]byte("# comment\r\nPLANA_KEY=old\r\nOTHER=x"))
	f.Add([]byte("PLANA_KEY_NEW=a\nexport PLANA_KEY=b\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		const v = "pa_live_VALUE"
		set := SetEnv(in, NewKeySlot, v, KeySlot)
		if got, ok := LookupEnv(set, NewKeySlot); !ok || got != v {
			t.Fatalf("after SetEnv, lookup = %q %v", got, ok)
		}
		// Every other line survives byte for byte, in order.
		if a, b := UnsetEnv(set, NewKeySlot), UnsetEnv(in, NewKeySlot); !bytes.Equal(a, b) {
			t.Fatalf("other lines changed:\n%q\n%q", a, b)
		}
		if again := SetEnv(set, NewKeySlot, v, KeySlot); !bytes.Equal(again, set) {
			t.Fatal("setting the same value again changed the file")
		}
	})
}

// keysWith are the keys a target is told, the new one's plaintext plain.
func keysWith(plain string) Keys {
	return Keys{Old: ref.Key{Prefix: "pa_live_OLD00000", Name: "old"}, New: ref.Key{ID: "key_new", Prefix: client.PrefixOf(plain), Name: "new"},
		Plaintext: func(context.Context) (string, error) { return plain, nil }}
}

func TestEnvFileDeployAndFinalize(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "app.env")
	oldK, newK := client.FormatKey("live", "OLD00000", strings.Repeat("o", 32)), client.FormatKey("live", "NEW00000", strings.Repeat("n", 32))
	orig := "# prod\r\nexport PLANA_KEY=" + oldK + "\r\nDB=postgres://x\r\n"
	os.WriteFile(p, []byte(orig), 0o644)
	f := mustOpen(t, "env-file:"+p)
	k := keysWith(newK)
	if note, err := f.Deploy(ctx, k); err != nil || note == "" {
		t.Fatal(note, err)
	}
	if note, err := f.Deploy(ctx, k); err != nil || note != "" {
		t.Fatal("re-deploying the same key must be a no-op", note, err)
	}
	got, _ := os.ReadFile(p)
	if want := "# prod\r\nexport PLANA_KEY=" + oldK + "\r\nPLANA_KEY_NEW=" + newK + "\r\nDB=postgres://x\r\n"; string(got) != want {
		t.Fatalf("deploy: %q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want the file's own 0644 kept", fi.Mode().Perm())
	}
	if h, err := f.Read(ctx); err != nil || h.Key != oldK || h.New != newK {
		t.Fatalf("read back %+v, %v", h, err)
	}
	if note, err := f.Finalize(ctx, k); err != nil || note == "" {
		t.Fatal(note, err)
	}
	got, _ = os.ReadFile(p)
	if want := "# prod\r\nexport PLANA_KEY=" + newK + "\r\nDB=postgres://x\r\n"; string(got) != want {
		t.Fatalf("finalize: %q", got)
	}
	if note, err := f.Finalize(ctx, k); err != nil || note != "" {
		t.Fatal("finalizing twice must be a no-op", note, err)
	}

	link := filepath.Join(dir, "link.env")
	os.Symlink(p, link)
	if _, err := mustOpen(t, "env-file:"+link).Deploy(ctx, k); err == nil || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), p) {
		t.Errorf("symlink: %v", err)
	}
	if _, err := mustOpen(t, "env-file:"+filepath.Join(dir, "missing.env")).Deploy(ctx, k); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro.env")
		os.WriteFile(ro, nil, 0o400)
		if _, err := mustOpen(t, "env-file:"+ro).Deploy(ctx, k); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Errorf("read-only file: %v", err)
		}
	}
}

func mustOpen(t *testing.T, to string) Target {
	t.Helper()
	tg, err := Open(to, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestExecTargetGetsKeyOnStdinOnly(t *testing.T) {
	dir := t.TempDir()
	key := client.FormatKey("live", "AB7K2XYZ", strings.Repeat("s", 32))
	t.Setenv("PLANA_TOKEN", "management-token")
	cmd := `cat > "$OUT/stdin"; env > "$OUT/env"; cat /proc/$$/cmdline > "$OUT/argv"`
	t.Setenv("OUT", dir)
	exec, err := Open("exec:"+cmd, Config{ExecTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Deploy(context.Background(), keysWith(key)); err != nil {
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
	var shown []string
	err = runExec(context.Background(), `read k; echo "bad key $k" >&2; exit 3`, key, 5*time.Second, nil, func(s string) { shown = append(shown, s) }, nil)
	if err == nil || strings.Contains(err.Error(), "pa_live_AB7K2XYZ") || !strings.Contains(strings.Join(shown, "\n"), "bad key pa_live_AB7K2XYZ…") {
		t.Errorf("a failure shows the redacted stderr tail on the terminal only: %v, shown %q", err, shown)
	}
	err = runExec(context.Background(), `sleep 5`, key, 50*time.Millisecond, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("timeout: %v", err)
	}
	if _, err := Parse("ftp:x"); err == nil {
		t.Error("unknown target accepted")
	}
}
