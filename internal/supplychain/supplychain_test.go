// Package supplychain_test holds the checks on what the module depends on.
package supplychain_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the module's directory, two levels up from this package.
var root = filepath.Join("..", "..")

// directDeps lists the modules go.mod requires directly (no "// indirect").
func directDeps(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var deps []string
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimSpace(strings.TrimPrefix(line, "require "))
		case !inBlock:
			continue
		}
		if line == "" || strings.HasPrefix(line, "//") || strings.Contains(line, "// indirect") {
			continue
		}
		deps = append(deps, strings.Fields(line)[0])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return deps
}

var majorSuffix = regexp.MustCompile(`/v[0-9]+$`)

// shortName is how the README names a module: owner/name on GitHub, the
// whole path elsewhere, without a major-version suffix.
func shortName(mod string) string {
	mod = majorSuffix.ReplaceAllString(mod, "")
	if rest, ok := strings.CutPrefix(mod, "github.com/"); ok {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) >= 2 {
			return parts[0] + "/" + parts[1]
		}
	}
	return mod
}

// readmeLibraries is the first column of the README's library table.
func readmeLibraries(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## Libraries, and why each is there")
	if !ok {
		t.Fatal(`README.md has no "## Libraries, and why each is there" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var names []string
	for _, l := range strings.Split(section, "\n") {
		cells := strings.Split(l, "|")
		if len(cells) < 3 || strings.Trim(cells[1], " -") == "" || strings.TrimSpace(cells[1]) == "library" {
			continue
		}
		names = append(names, cells[1])
	}
	if len(names) == 0 {
		t.Fatal("the README's library table is empty")
	}
	return strings.Join(names, "\n")
}

// TestEveryDirectDependencyIsExplained fails when go.mod requires a module
// directly that the README's table does not name: each dependency is a
// choice someone must explain.
func TestEveryDirectDependencyIsExplained(t *testing.T) {
	libs := readmeLibraries(t)
	deps := directDeps(t)
	if len(deps) < 5 {
		t.Fatalf("read only %d direct dependencies from go.mod: %v", len(deps), deps)
	}
	for _, d := range deps {
		if !strings.Contains(libs, shortName(d)) {
			t.Errorf("go.mod requires %s, but README.md's \"Libraries, and why each is there\" table does not name %s: add a row saying why it is there, or drop it", d, shortName(d))
		}
	}
}

func TestShortName(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/cenkalti/backoff/v5":       "cenkalti/backoff",
		"github.com/rogpeppe/go-internal":      "rogpeppe/go-internal",
		"github.com/olekukonko/tablewriter/v2": "olekukonko/tablewriter",
		"golang.org/x/crypto":                  "golang.org/x/crypto",
		"modernc.org/sqlite":                   "modernc.org/sqlite",
		"go.yaml.in/yaml/v3":                   "go.yaml.in/yaml",
	} {
		if got := shortName(in); got != want {
			t.Errorf("shortName(%q) = %q, want %q", in, got, want)
		}
	}
}
