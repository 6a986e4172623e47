package rotate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/plana-cli/plana/internal/atomicfile"
)

// safeID is a key id safe in a file name, at most maxIDLen long. The length
// is checked apart: a counted repetition {1,128} compiles to 128 copies of
// the class, and that compile was the largest part of plana's start-up.
var safeID = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

const maxIDLen = 128

// rotationsDir is the folder of a state directory that holds the journals.
const rotationsDir = "rotations"

// RotationsDir is where the journals of unfinished rotations live under
// stateDir (finished ones move to its done/ folder).
func RotationsDir(stateDir string) string { return filepath.Join(stateDir, rotationsDir) }

// journals keeps the journals of a state directory.
type journals struct{ dir string }

func journalsOf(stateDir string) journals { return journals{dir: RotationsDir(stateDir)} }

func (s journals) path(id string) string { return filepath.Join(s.dir, id+".json") }

func (s journals) donePath(id string, at time.Time) string {
	return filepath.Join(s.dir, "done", id+"-"+at.UTC().Format("20060102T150405Z")+".json")
}

func checkID(id string) error {
	if len(id) > maxIDLen || !safeID.MatchString(id) {
		return fmt.Errorf("key id %q is not a BOS key id", id)
	}
	return nil
}

// decodeJournal reads a journal, written by this version or an older one.
func decodeJournal(data []byte) (*Journal, error) {
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, err
	}
	if _, ok := parseState(h.Step); h.Version != journalVersion || !ok {
		return nil, fmt.Errorf("unknown version %d, step %q or key %q", h.Version, h.Step, h.Old.ID)
	}
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, err
	}
	j.upgrade(h.legacy)
	return &j, nil
}

// header is what decodeJournal checks before it reads a journal whole.
type header struct {
	Version int `json:"version"`
	Old     struct {
		ID string `json:"id"`
	} `json:"old"`
	legacy
}

// load returns the journal for key id, nil when there is none.
func (s journals) load(id string) (*Journal, error) {
	p := s.path(id)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &JournalError{Path: p, KeyID: id, Err: err}
	}
	j, err := decodeJournal(data)
	if err != nil {
		return nil, &JournalError{Path: p, KeyID: id, Err: err}
	}
	if j.Old.ID != id {
		return nil, &JournalError{Path: p, KeyID: id, Err: fmt.Errorf("unknown version %d, step %q or key %q", j.Version, j.State, j.Old.ID)}
	}
	return j, nil
}

func (s journals) save(j *Journal) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	j.Version = journalVersion
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := writePrivate(s.path(j.Old.ID), append(data, '\n')); err != nil {
		return fmt.Errorf("writing the rotation journal: %w", err)
	}
	return nil
}

// remove deletes the journal of key id; none is fine.
func (s journals) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// finish moves a finished journal to done/, where Status no longer sees it
// but a person can still read what happened.
func (s journals) finish(j *Journal, now time.Time) (string, error) {
	if err := s.save(j); err != nil {
		return "", err
	}
	dst := s.donePath(j.Old.ID, now)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	return dst, os.Rename(s.path(j.Old.ID), dst)
}

// lastDone returns the newest finished journal of key id, nil when none.
func (s journals) lastDone(id string) *Journal {
	// The stamps in the names sort as the times they are.
	ps, _ := filepath.Glob(filepath.Join(s.dir, "done", id+"-*.json"))
	for i := len(ps) - 1; i >= 0; i-- {
		data, err := os.ReadFile(ps[i])
		if err != nil {
			continue
		}
		if j, err := decodeJournal(data); err == nil && j.Old.ID == id && j.New != nil && j.State == Done {
			return j
		}
	}
	return nil
}

// all returns every unfinished journal, damaged ones as errors.
func (s journals) all() ([]*Journal, []error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []*Journal
	var errs []error
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		// A directory under a journal's name is reported, not skipped.
		if !ok || checkID(id) != nil {
			continue
		}
		j, err := s.load(id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Gone since the listing: that rotation finished meanwhile (a bulk
		// run, another plana).
		if j == nil {
			continue
		}
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].StartedAt.Before(out[b].StartedAt) })
	return out, errs
}

// holder is written into a lock file so a second plana can say who holds it.
type holder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

// lock takes the rotation lock of key id without waiting.
func (s journals) lock(id string) (*flock.Flock, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(s.dir, id+".lock")
	fl := flock.New(p, flock.SetPermissions(0o600))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking the rotation of %s: %w", id, err)
	}
	if !ok {
		le := &LockedError{KeyID: id}
		var h holder
		if data, err := os.ReadFile(p); err == nil && json.Unmarshal(data, &h) == nil {
			le.PID, le.Host, le.Since = h.PID, h.Host, h.Since
		}
		return nil, le
	}
	host, _ := os.Hostname()
	data, _ := json.Marshal(holder{PID: os.Getpid(), Host: host, Since: time.Now().UTC()})
	if err := os.WriteFile(p, data, 0o600); err != nil {
		fl.Unlock()
		return nil, fmt.Errorf("recording the rotation lock holder: %w", err)
	}
	return fl, nil
}

// rotationOf returns the old key id of the rotation whose new key is id.
func (s journals) rotationOf(id string) string {
	js, _ := s.all()
	for _, j := range js {
		if j.New != nil && j.New.ID == id {
			return j.Old.ID
		}
	}
	return ""
}

// evidence says which journals show rotations that wrote to the rotation
// log at logPath (a step this machine recorded), "" when none do. A log
// moved aside as rotlog.ChainError advises (any rotation-log.jsonl.* but
// its lock) was restarted on purpose, and the journals of before say
// nothing about the new one.
func (s journals) evidence(logPath string) string {
	aside, _ := filepath.Glob(logPath + ".*")
	for _, p := range aside {
		if p != logPath+".lock" {
			return ""
		}
	}
	open, _ := filepath.Glob(filepath.Join(s.dir, "*.json"))
	done, _ := filepath.Glob(filepath.Join(s.dir, "done", "*.json"))
	count, latest := 0, ""
	for _, p := range append(open, done...) {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		j, err := decodeJournal(data)
		// Only steps this machine recorded vouch for a line: a rotation
		// carried on from the server was rebuilt from its facts, and a
		// create whose "created" line was not written yet has no step.
		if err != nil || j.Adopted || !j.State.Reached(Created) {
			continue
		}
		count++
		latest = fmt.Sprintf("%s (%s, step %s)", p, j.Old.Prefix, j.State)
	}
	if count == 0 {
		return ""
	}
	return fmt.Sprintf("%d rotation journals show entries were written, the last read %s", count, latest)
}

// writePrivate replaces a state file of plana's atomically with data at
// mode 0600, whatever the mode of the file it replaces: it holds secrets.
func writePrivate(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, 0o600)
}
