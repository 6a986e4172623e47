package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDocsUpToDate fails when docs/cli or docs/man, as committed, are not
// what the code generates: a flag or help text changed without `make docs`.
func TestDocsUpToDate(t *testing.T) {
	tmp := t.TempDir()
	gen := Options{MarkdownDir: filepath.Join(tmp, "cli"), ManDir: filepath.Join(tmp, "man")}
	if err := Generate(gen); err != nil {
		t.Fatal(err)
	}
	for committed, fresh := range map[string]string{
		"docs/cli": gen.MarkdownDir,
		"docs/man": gen.ManDir,
	} {
		if err := compareDirs(filepath.Join("..", "..", committed), fresh, committed); err != nil {
			t.Errorf("%v; run make docs and commit the result", err)
		}
	}
}

// compareDirs names the first file (in name order) that is missing, extra
// or different in committed, and its first differing line.
func compareDirs(committed, fresh, label string) error {
	want, err := readDir(fresh)
	if err != nil {
		return err
	}
	got, err := readDir(committed)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		g, inGot := got[n]
		w, inWant := want[n]
		switch {
		case !inGot:
			return fmt.Errorf("%s/%s is missing", label, n)
		case !inWant:
			return fmt.Errorf("%s/%s is no longer generated (a command was removed or renamed)", label, n)
		case !bytes.Equal(g, w):
			gl, wl := strings.Split(string(g), "\n"), strings.Split(string(w), "\n")
			for i := 0; ; i++ {
				var a, b string
				if i < len(gl) {
					a = gl[i]
				}
				if i < len(wl) {
					b = wl[i]
				}
				if a != b || i >= len(gl) || i >= len(wl) {
					return fmt.Errorf("%s/%s is out of date: line %d is %q, the code generates %q", label, n, i+1, a, b)
				}
			}
		}
	}
	return nil
}

func readDir(dir string) (map[string][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		files[e.Name()] = b
	}
	return files, nil
}

func TestCompareDirsNamesTheDrift(t *testing.T) {
	write := func(dir string, files map[string]string) string {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, s := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	fresh := write(filepath.Join(t.TempDir(), "fresh"), map[string]string{"a.md": "x\ny\n", "b.md": "b\n"})
	tests := []struct {
		name      string
		committed map[string]string
		want      string
	}{
		{"same", map[string]string{"a.md": "x\ny\n", "b.md": "b\n"}, ""},
		{"changed line", map[string]string{"a.md": "x\nz\n", "b.md": "b\n"}, `docs/cli/a.md is out of date: line 2 is "z", the code generates "y"`},
		{"shorter", map[string]string{"a.md": "x\n", "b.md": "b\n"}, "docs/cli/a.md is out of date: line 2"},
		{"missing", map[string]string{"a.md": "x\ny\n"}, "docs/cli/b.md is missing"},
		{"extra", map[string]string{"a.md": "x\ny\n", "b.md": "b\n", "old.md": ""}, "docs/cli/old.md is no longer generated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := compareDirs(write(filepath.Join(t.TempDir(), "c"), tt.committed), fresh, "docs/cli")
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestGenerateEverything(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1767323045") // 2026-01-02
	var stderr bytes.Buffer
	if code := run([]string{"--markdown-dir", filepath.Join(dir, "md"), "--man-dir", filepath.Join(dir, "man"), "--completion-dir", filepath.Join(dir, "comp")}, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{
		"md/plana.md", "md/plana_keys_rotate.md", "md/plana_exit-codes.md", "md/plana_environment.md", "md/plana_completion_zsh.md",
		"man/plana.1", "man/plana-keys-rotate.1", "man/plana-exit-codes.1", "man/plana-environment.1",
		"comp/plana.bash", "comp/_plana", "comp/plana.fish", "comp/plana.ps1",
	} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Contains(b, []byte("plana")) {
			t.Errorf("%s does not mention plana", f)
		}
		// cobra's auto-generated tag carries the day of the run.
		if bytes.Contains(b, []byte("Auto generated")) {
			t.Errorf("%s carries cobra's dated auto-generated tag", f)
		}
	}
	page, _ := os.ReadFile(filepath.Join(dir, "man/plana-exit-codes.1"))
	for _, want := range []string{`.TH "PLANA-EXIT-CODES" "1" "Jan 2026"`, "plana help exit-codes", "130  interrupted"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("plana-exit-codes.1 lacks %q:\n%s", want, page)
		}
	}
	root, _ := os.ReadFile(filepath.Join(dir, "md/plana.md"))
	if !strings.Contains(string(root), "[plana help environment](plana_environment.md)") {
		t.Errorf("plana.md does not link the environment topic:\n%s", root)
	}
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"nothing to do", "", nil, "at least one"},
		{"stray argument", "", []string{"--man-dir", t.TempDir(), "docs"}, "at least one"},
		{"bad epoch", "yesterday", []string{"--man-dir", t.TempDir()}, "SOURCE_DATE_EPOCH"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tt.env)
			var stderr bytes.Buffer
			if code := run(tt.args, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tt.want)
			}
		})
	}
}
