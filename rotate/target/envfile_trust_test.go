//go:build linux

package target

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/asnobody"
	"github.com/plana-cli/plana/rotate/ref"
)

var (
	trustOld   = client.FormatKey("live", "OLDKEY01", "q7Xw2LmN9pRt4VbZ8cDe1FgH3jKs6YuQ")
	trustNew   = client.FormatKey("live", "NEWKEY01", "a1Xw2LmN9pRt4VbZ8cDe1FgH3jKs6YuQ")
	trustOther = client.FormatKey("live", "OTHER001", "b2Xw2LmN9pRt4VbZ8cDe1FgH3jKs6YuQ")
)

// trustKeys are the keys of the rotation the tests check files for.
func trustKeys() Keys {
	return Keys{Old: ref.Key{ID: "key_old", Prefix: client.PrefixOf(trustOld), Name: "Nightly stock sync (2025)"},
		New:       ref.Key{ID: "key_new", Prefix: client.PrefixOf(trustNew), Name: "Nightly stock sync (2026)"},
		Plaintext: func(context.Context) (string, error) { return trustNew, nil }}
}

// envTarget opens env-file:p with its warnings collected.
func envTarget(t *testing.T, p string) (Target, *[]string) {
	t.Helper()
	var warned []string
	tg, err := Open("env-file:"+p, Config{Warn: func(s string) { warned = append(warned, s) }})
	if err != nil {
		t.Fatal(err)
	}
	return tg, &warned
}

func writeEnv(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// swapDirVar passes the directories root prepared to the rerun as nobody.
const swapDirVar = "PLANA_TEST_SWAP_DIR"

// An env file in a directory every user may write, without the sticky bit,
// can be swapped between two runs for someone else's world-readable file,
// which plana (as root) would then fill with the new key and leave theirs.
// Such a file is refused, by every operation, saying why and what to do;
// so is one below such a directory. As nobody, the swap is shown to work
// there, and to fail where the sticky bit is set, whose file is accepted.
func TestEnvFileOthersCouldSwapIsRefused(t *testing.T) {
	if base := os.Getenv(swapDirVar); base != "" {
		// As nobody: the swap an attacker would make.
		p := filepath.Join(base, "open", "app.env")
		if err := os.Rename(p, p+".was"); err != nil {
			t.Fatalf("nobody could not move root's file aside in a directory everyone may write: %v", err)
		}
		writeEnv(t, p, "# nobody's own, readable by all\n", 0o644)
		q := filepath.Join(base, "sticky", "app.env")
		if err := os.Rename(q, q+".was"); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("with the sticky bit, nobody moved root's file: %v", err)
		}
		return
	}
	base, err := os.MkdirTemp("", "plana-swap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]fs.FileMode{"open": 0o777, "sticky": 0o777 | fs.ModeSticky, "open/app": 0o755}
	for _, d := range []string{"open", "sticky", "open/app"} {
		p := filepath.Join(base, d)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, dirs[d]); err != nil {
			t.Fatal(err)
		}
		writeEnv(t, filepath.Join(p, "app.env"), "PLANA_KEY="+trustOld+"\n", 0o600)
	}
	open, below := filepath.Join(base, "open", "app.env"), filepath.Join(base, "open", "app", "app.env")
	ctx := context.Background()
	refused := func(p, dir string) {
		t.Helper()
		tg, _ := envTarget(t, p)
		err := tg.Check(ctx, trustKeys())
		for _, want := range []string{p, dir + " (", "every user may write", "no sticky bit", "chmod o-w " + dir, "chmod +t " + dir, "nothing was created"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Check of %s: want a refusal saying %q, got %v", p, want, err)
			}
		}
		if _, err := tg.Deploy(ctx, trustKeys()); err == nil || !strings.Contains(err.Error(), "every user may write") {
			t.Errorf("Deploy to %s: want the same refusal, got %v", p, err)
		}
	}
	refused(open, filepath.Dir(open))
	refused(below, filepath.Dir(open))

	sticky := filepath.Join(base, "sticky", "app.env")
	tg, _ := envTarget(t, sticky)
	if err := tg.Check(ctx, trustKeys()); err != nil {
		t.Errorf("a file in a directory with the sticky bit: %v", err)
	}

	t.Setenv(swapDirVar, base)
	if !asnobody.Rerun(t) {
		t.Skip("not root: the swap as another user was not tried")
	}
	refused(open, filepath.Dir(open))
	if got, _ := os.ReadFile(open); string(got) != "# nobody's own, readable by all\n" {
		t.Errorf("the file nobody put there was written: %q", got)
	}
	if got, _ := os.ReadFile(sticky); string(got) != "PLANA_KEY="+trustOld+"\n" {
		t.Errorf("root's file beside the sticky bit changed: %q", got)
	}
}

// A file whose PLANA_KEY holds another key than the one being rotated is
// another automation's: refused before anything is created. The key being
// rotated, or its successor already there, passes, and so does the key
// being rotated under PLANA_KEY_NEW (its own rotation stopped before step
// 4, as an emergency on a lost laptop may have); no PLANA_KEY at all passes
// with a warning.
func TestEnvFileHoldingAnotherKeyIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          string // in the refusal; "" passes
		warn          string // in the warning
	}{
		{"the key being rotated", "export PLANA_KEY=" + trustOld + "\n", "", ""},
		{"its successor, finalized by hand", "PLANA_KEY=" + trustNew + "\n", "", ""},
		{"another key", "DB=x\nPLANA_KEY=" + trustOther + "\n", "holds PLANA_KEY=" + client.PrefixOf(trustOther) + "…, another key than the one being rotated (" + client.PrefixOf(trustOld), ""},
		{"the key being rotated beside its predecessor, step 4 never run", "PLANA_KEY=" + trustOther + "\nPLANA_KEY_NEW=" + trustOld + "\n", "", ""},
		{"its successor deployed over it since", "PLANA_KEY=" + trustOther + "\nPLANA_KEY_NEW=" + trustNew + "\n", "", ""},
		{"another key beside another", "PLANA_KEY=" + trustOther + "\nPLANA_KEY_NEW=" + trustOther + "\n", "another key than the one being rotated", ""},
		{"not a key at all", "PLANA_KEY=changeme\n", "holds a PLANA_KEY that is not a BOS key", ""},
		{"no PLANA_KEY", "DB=x\n", "", "has no PLANA_KEY"},
		{"an empty PLANA_KEY", "PLANA_KEY=\n", "", "has no PLANA_KEY"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "app"+string(rune('a'+i))+".env")
			writeEnv(t, p, tt.content, 0o600)
			tg, warned := envTarget(t, p)
			err := tg.Check(ctx, trustKeys())
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was created")):
				t.Errorf("want a refusal saying %q, got %v", tt.want, err)
			}
			if err != nil && strings.Contains(err.Error(), trustOther[16:]) {
				t.Errorf("the refusal holds the other key's secret: %v", err)
			}
			w := strings.Join(*warned, "\n")
			if tt.warn != "" && !strings.Contains(w, tt.warn) || tt.warn == "" && w != "" {
				t.Errorf("warnings %q, want %q", w, tt.warn)
			}
		})
	}
}

// What a write replaces is what it read: a file swapped in between the read
// and the rename is not written, and a symlink is never followed.
func TestEnvFileSwappedBeforeTheWriteIsRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "app.env")
	writeEnv(t, p, "PLANA_KEY="+trustOld+"\n", 0o600)
	tg, _ := envTarget(t, p)
	if err := tg.Check(ctx, trustKeys()); err != nil {
		t.Fatal(err)
	}
	beforeWrite = func(path string) {
		theirs := path + ".theirs"
		writeEnv(t, theirs, "PLANA_KEY="+trustOld+"\n", 0o644)
		if err := os.Rename(theirs, path); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { beforeWrite = nil })
	if _, err := tg.Deploy(ctx, trustKeys()); err == nil || !strings.Contains(err.Error(), "was replaced by another file") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("want the swap refused, got %v", err)
	}
	if got, _ := os.ReadFile(p); strings.Contains(string(got), NewKeySlot) {
		t.Errorf("the swapped-in file got the new key: %q", got)
	}
	beforeWrite = nil

	link := filepath.Join(dir, "link.env")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	lt, _ := envTarget(t, link)
	if err := lt.Check(ctx, trustKeys()); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("a symlink: %v", err)
	}
}

// The mode is kept as found, and a file every user may read is accepted
// with a warning that says so and what to do.
func TestEnvFileReadableByEveryoneWarns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o600} {
		p := filepath.Join(dir, mode.String()+".env")
		writeEnv(t, p, "PLANA_KEY="+trustOld+"\n", mode)
		tg, warned := envTarget(t, p)
		if err := tg.Check(ctx, trustKeys()); err != nil {
			t.Fatal(err)
		}
		w := strings.Join(*warned, "\n")
		if world := mode&0o004 != 0; world != strings.Contains(w, "readable by every user") || world && !strings.Contains(w, "chmod o-r "+p) {
			t.Errorf("mode %04o: warnings %q", mode, w)
		}
		if _, err := tg.Deploy(ctx, trustKeys()); err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != mode {
			t.Errorf("mode %04o became %04o", mode, fi.Mode().Perm())
		}
	}
}
