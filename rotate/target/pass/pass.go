// Package pass keeps the keys of a rotation in the standard Unix password
// manager: entries PATH/PLANA_KEY and PATH/PLANA_KEY_NEW, the key on the
// first line as pass expects, anything under it (notes, the rotation log)
// kept. It runs the pass command, so the store's gpg recipients, its git
// history and its extensions all work as they do for the user; keys go to
// pass on stdin only.
package pass

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plana-cli/plana/internal/secret"
)

// Store is the entries under one pass path.
type Store struct {
	path string
	tool secret.Tool
}

// New checks path (the part after "pass:") and finds pass.
func New(p string) (*Store, error) {
	if err := CheckPath(p); err != nil {
		return nil, err
	}
	tool, err := secret.FindTool("pass", "install it (apt-get install pass, brew install pass) and initialise the store with `pass init GPG-ID`")
	if err != nil {
		return nil, err
	}
	return &Store{path: p, tool: tool}, nil
}

// CheckPath refuses a path that pass would not take as a path inside
// the store; nothing is run.
func CheckPath(p string) error {
	switch {
	case p == "":
		return errors.New("pass: needs a path inside the password store, as in pass:ci/stock-sync")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("pass:%s: the path is inside the password store, without a leading /: pass:%s", p, strings.TrimLeft(p, "/"))
	case path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == "..":
		return fmt.Errorf("pass:%s: write the path plainly, as in pass:%s (no ., .. or doubled /)", p, strings.TrimPrefix(path.Clean(p), "../"))
	}
	return nil
}

func (s *Store) String() string { return "pass:" + s.path }

func (s *Store) entry(name string) string { return s.path + "/" + name }

// storeDir is where pass keeps its files: entries are NAME.gpg files
// there, which is how an absent entry is told from a failing pass.
func storeDir() (string, error) {
	if d := os.Getenv("PASSWORD_STORE_DIR"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".password-store"), nil
}

func (s *Store) exists(name string) (bool, error) {
	dir, err := storeDir()
	if err != nil {
		return false, err
	}
	_, err = os.Stat(filepath.Join(dir, filepath.FromSlash(s.entry(name))+".gpg"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// show is an entry's whole plaintext; ok is false when there is no entry.
func (s *Store) show(ctx context.Context, name string) (content string, ok bool, err error) {
	found, err := s.exists(name)
	if err != nil || !found {
		return "", false, err
	}
	out, err := s.tool.Run(ctx, nil, "show", s.entry(name))
	if err != nil {
		return "", false, fmt.Errorf("reading %s/%s: %w: check that this machine holds a gpg key the store is encrypted for (`pass show %s` should print it)", s, name, err, s.entry(name))
	}
	return string(out), true, nil
}

// Get returns the first line of each entry; an absent entry is absent
// from the map.
func (s *Store) Get(ctx context.Context, names ...string) (map[string]string, error) {
	got := map[string]string{}
	for _, n := range names {
		content, ok, err := s.show(ctx, n)
		if err != nil {
			return nil, err
		}
		if ok {
			first, _, _ := strings.Cut(content, "\n")
			got[n] = first
		}
	}
	return got, nil
}

// Put puts each value of set on the first line of its entry, keeping the
// lines under it, and removes the entries in unset (an absent one is no
// error). pass has no transaction: entries are written in name order, the
// removals last.
func (s *Store) Put(ctx context.Context, set map[string]string, unset ...string) error {
	for n, v := range set {
		if v == "" || strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("%s/%s: the key must be one non-empty line", s, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(set)) {
		content, _, err := s.show(ctx, n)
		if err != nil {
			return err
		}
		_, rest, _ := strings.Cut(content, "\n")
		if err := s.insert(ctx, n, set[n]+"\n"+rest); err != nil {
			return err
		}
	}
	for _, n := range unset {
		found, err := s.exists(n)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if _, err := s.tool.Run(ctx, nil, "rm", "--force", s.entry(n)); err != nil {
			return fmt.Errorf("removing %s/%s: %w", s, n, err)
		}
	}
	return nil
}

// Annotate adds line under the key of entry name (after the lines already
// there), as the rotation log's line is kept beside the key it rotated. A
// line the entry already has is not added again, so a step run twice
// leaves one.
func (s *Store) Annotate(ctx context.Context, name, line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("%s/%s: a note is one line", s, name)
	}
	content, ok, err := s.show(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s/%s does not exist: there is no key to note under", s, name)
	}
	_, notes, _ := strings.Cut(content, "\n")
	if slices.Contains(strings.Split(notes, "\n"), line) {
		return nil
	}
	if !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return s.insert(ctx, name, content+line+"\n")
}

// insert replaces an entry whole. pass insert has gpg write the entry's
// file in place, so an automation running pass show meanwhile could read
// half of it; the content goes into a staging entry beside it instead,
// which pass mv then renames over it (one rename in the same directory,
// under the same .gpg-id). A staging entry a crash left behind is
// overwritten by the next write.
func (s *Store) insert(ctx context.Context, name, content string) error {
	staged := s.path + "/.plana-staged-" + name
	if _, err := s.tool.Run(ctx, []byte(content), "insert", "--multiline", "--force", staged); err != nil {
		return fmt.Errorf("writing %s/%s: %w: check that `pass insert %s` works on this machine (the store initialised with `pass init`, its gpg keys present)", s, name, err, s.entry(name))
	}
	if _, err := s.tool.Run(ctx, nil, "mv", "--force", staged, s.entry(name)); err != nil {
		return fmt.Errorf("writing %s/%s: moving it into place: %w", s, name, err)
	}
	return nil
}
