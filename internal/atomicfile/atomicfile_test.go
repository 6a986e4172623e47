//go:build !windows

package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFileReplacesWithExactMode(t *testing.T) {
	// A umask that would loosen or tighten the mode must not matter.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "automation.env")
	if err := os.WriteFile(p, []byte("PLANA_KEY=old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if err := WriteFile(p, []byte("PLANA_KEY=new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(got) != "PLANA_KEY=new\n" || fi.Mode().Perm() != 0o600 {
		t.Errorf("got %q at %v, want the new contents at 0600", got, fi.Mode().Perm())
	}
	ics := filepath.Join(dir, "due.ics")
	if err := WriteFile(ics, []byte("BEGIN:VCALENDAR\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(ics); fi.Mode().Perm() != 0o644 {
		t.Errorf("a calendar for others to read is %v, want 0644 despite the umask", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("temporary files left behind: %d entries", len(ents))
	}
}

// A write killed before its rename leaves its staged copy beside the target
// (for an env file, a plaintext); the next write of the target removes it,
// and leaves other files alone.
func TestWriteRemovesWhatAKilledWriteLeft(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "app.env")
	stray := filepath.Join(dir, ".app.env123456789")
	keep := []string{filepath.Join(dir, ".app.envrc"), filepath.Join(dir, ".other.env42")}
	for _, p := range append([]string{stray}, keep...) {
		if err := os.WriteFile(p, []byte("PLANA_KEY_NEW=half-written\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteFile(target, []byte("PLANA_KEY=x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("the killed write's staged copy is still there: %v", err)
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}
