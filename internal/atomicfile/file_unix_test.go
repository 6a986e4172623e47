//go:build !windows

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// swapIn puts a file of someone else's at p, as a rename in a directory
// they can write would.
func swapIn(t *testing.T, p string) {
	t.Helper()
	other := p + ".theirs"
	if err := os.WriteFile(other, []byte("PLANA_KEY=theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, p); err != nil {
		t.Fatal(err)
	}
}

// What Replace writes over is the file Open read and checked: a file put at
// the path meanwhile, before the new version was staged or after, is not
// replaced, and nothing is left behind.
func TestReplaceRefusesAPathThatNamesAnotherFileByThen(t *testing.T) {
	for _, when := range []string{"after the open", "before the rename"} {
		t.Run(when, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "automation.env")
			if err := os.WriteFile(p, []byte("PLANA_KEY=old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if when == "after the open" {
				swapIn(t, p)
			} else {
				beforeRename = func(string) { swapIn(t, p) }
				t.Cleanup(func() { beforeRename = nil })
			}
			if err := f.Replace([]byte("PLANA_KEY=new\n")); !errors.Is(err, ErrReplaced) {
				t.Fatalf("want ErrReplaced, got %v", err)
			}
			if got, _ := os.ReadFile(p); string(got) != "PLANA_KEY=theirs\n" {
				t.Errorf("the file put there was rewritten: %q", got)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("the refused write left files behind: %d entries", len(ents))
			}
		})
	}
}

// A symlink is not opened, whatever it points to: the write would replace
// the link, and a link someone else placed would choose where plana writes.
func TestOpenRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.env")
	link := filepath.Join(dir, "link.env")
	if err := os.WriteFile(real, []byte("PLANA_KEY=old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link); !errors.Is(err, ErrSymlink) {
		t.Errorf("Open of a symlink: want ErrSymlink, got %v", err)
	}
	if err := Replace(link, []byte("PLANA_KEY=new\n"), 0o600); !errors.Is(err, ErrSymlink) {
		t.Errorf("Replace of a symlink: want ErrSymlink, got %v", err)
	}
	if got, _ := os.ReadFile(real); string(got) != "PLANA_KEY=old\n" {
		t.Errorf("the link's target was written: %q", got)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Open of a directory: want ErrNotRegular, got %v", err)
	}
}

func TestExposedDir(t *testing.T) {
	root := t.TempDir()
	mk := func(rel string, mode fs.FileMode) string {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shared := mk("shared", 0o777)
	mk("sticky", 0o777|fs.ModeSticky)
	mk("shared/app", 0o755)
	mk("sticky/app", 0o755)
	mk("group", 0o775)
	linked := filepath.Join(root, "linked")
	if err := os.Symlink(filepath.Join(shared, "app"), linked); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, want string
	}{
		{"shared/app.env", shared},
		{"shared/app/app.env", shared}, // the directory above can be swapped
		{"linked/app.env", shared},     // through a symlink, the real parents
		{"sticky/app.env", ""},
		{"sticky/app/app.env", ""},
		{"group/app.env", ""}, // a group chosen to share it is trusted
	}
	for _, tt := range tests {
		dir, mode, err := ExposedDir(filepath.Join(root, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if dir != tt.want {
			t.Errorf("%s: exposed %q (%v), want %q", tt.file, dir, mode, tt.want)
		}
	}
}
