package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattn/go-runewidth"
)

const (
	// pageWidth is the terminal a man page must read well on.
	pageWidth = 80
	// manIndent is how far man sets a page's body in; examples and help
	// topics are printed as written (no filling), so each of their lines
	// has what is left of pageWidth.
	manIndent = 8
)

// Every example and every help topic line fits 80 columns once man sets it
// in; and where man is installed, every line of every page it renders at
// 80 columns does.
func TestManPagesFit80Columns(t *testing.T) {
	root := newRoot()
	check := func(page, what, text string) {
		for i, line := range strings.Split(text, "\n") {
			if w := runewidth.StringWidth(line); manIndent+w > pageWidth {
				t.Errorf("%s, %s line %d: %d columns, %d in the man page, over %d: %q", page, what, i+1, w, manIndent+w, pageWidth, line)
			}
		}
	}
	for _, c := range commands(root) {
		check(manName(c), "example", c.Example)
	}
	for _, h := range helpTopics(root) {
		check(manName(h), "text", h.Long)
	}

	man, err := exec.LookPath("man")
	if err != nil {
		t.Log("man is not installed: the rendered pages are not checked")
		return
	}
	dir := t.TempDir()
	if err := Generate(Options{ManDir: dir}); err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	for _, p := range pages {
		cmd := exec.Command(man, "-l", p)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "LC_ALL=C.UTF-8", "MAN_KEEP_FORMATTING=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("man -l %s: %v", filepath.Base(p), err)
		}
		for i, line := range strings.Split(string(out), "\n") {
			if w := runewidth.StringWidth(line); w > pageWidth {
				t.Errorf("%s, rendered line %d: %d columns, over %d: %q", filepath.Base(p), i+1, w, pageWidth, strings.TrimSpace(line))
			}
		}
	}
}
