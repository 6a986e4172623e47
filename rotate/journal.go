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
	"github.com/plana-cli/plana/rotate/ref"
)

const journalVersion = 1

// Step is how far a rotation got. It moves forward through advance; the
// only way back is reset, when a successor is abandoned and another is made.
type Step string

// The steps, in order.
const (
	StepNone      Step = ""
	StepStarted   Step = "started"   // idempotency key recorded; the create may be in flight
	StepCreated   Step = "created"   // new key issued, plaintext stored
	StepChecked   Step = "checked"   // the new key answers
	StepDeployed  Step = "deployed"  // step 2
	StepVerified  Step = "verified"  // step 3: the gate held
	StepFinalized Step = "finalized" // step 4
	StepRevoked   Step = "revoked"   // step 5
	StepDone      Step = "done"
)

var stepOrder = []Step{StepNone, StepStarted, StepCreated, StepChecked, StepDeployed, StepVerified, StepFinalized, StepRevoked, StepDone}

func (s Step) index() int {
	for i, t := range stepOrder {
		if t == s {
			return i
		}
	}
	return -1
}

// Reached reports whether s is t or later.
func (s Step) Reached(t Step) bool { return s.index() >= t.index() }

// PendingCreate is a create request that may have reached the server. It is
// written before the request is sent, so its answer can be found again by
// replaying the same idempotency key with the same body.
type PendingCreate struct {
	IdempotencyKey string    `json:"idempotency_key"`
	Name           string    `json:"name"`
	Scopes         []string  `json:"scopes"`
	Description    string    `json:"description,omitempty"`
	At             time.Time `json:"at"`
}

// Journal is the local record of one rotation, named after the old key.
type Journal struct {
	Version         int            `json:"version"`
	Old             ref.Key        `json:"old"`
	OldCreatedBy    string         `json:"old_created_by,omitempty"`
	Pending         *PendingCreate `json:"pending_create,omitempty"`
	New             *ref.Key       `json:"new,omitempty"`
	NewCreatedAt    time.Time      `json:"new_created_at,omitzero"`
	NewCreatedBy    string         `json:"new_created_by,omitempty"`
	Adopted         bool           `json:"adopted"`          // found on the server, not made by this journal's runs
	PlaintextStored bool           `json:"plaintext_stored"` // in the keyring under secret.KeyName(New.ID)
	OwnCalls        []string       `json:"own_calls,omitempty"`
	Abandoned       []ref.Key      `json:"abandoned,omitempty"`
	// Target is the first of Targets, as journals had it when a rotation
	// had one target at most.
	Target       string             `json:"target,omitempty"`
	Targets      []TargetState      `json:"targets,omitempty"`
	Deployed     bool               `json:"deployed"`
	OldRevoked   bool               `json:"old_revoked"`
	Step         Step               `json:"step"`
	Steps        map[Step]time.Time `json:"steps"`
	Reason       string             `json:"reason"`
	Emergency    bool               `json:"emergency"`
	QuietSeconds int64              `json:"quiet_period_seconds,omitempty"`
	// FutureUses: uses of the old key stamped after the server's present,
	// and when plana first saw each (see gate.counted).
	FutureUses map[string]time.Time `json:"future_uses,omitempty"`
	Actor      ref.Actor            `json:"actor"`
	StartedAt  time.Time            `json:"started_at"`
	UpdatedAt  time.Time            `json:"updated_at"`
}

func (j *Journal) quiet() time.Duration { return time.Duration(j.QuietSeconds) * time.Second }

// advance records step s at server time now, and moves the journal to s
// unless it is already there or further: a step done again (a deploy to a
// new target after the gate held) gets its new time, not an earlier step.
func (j *Journal) advance(s Step, now time.Time) {
	if !j.Step.Reached(s) {
		j.Step = s
	}
	if j.Steps == nil {
		j.Steps = map[Step]time.Time{}
	}
	j.Steps[s] = now.UTC()
}

// reset is the only way back: the successor under way is abandoned (revoked,
// or never answered), and the rotation starts again from before step 1. What
// was abandoned stays in Abandoned; the steps' times stay as history.
func (j *Journal) reset() {
	j.Pending, j.New, j.NewCreatedAt, j.NewCreatedBy, j.Adopted = nil, nil, time.Time{}, "", false
	j.PlaintextStored, j.Deployed, j.OwnCalls = false, false, nil
	// The targets stay the rotation's, but none holds the next key yet.
	for i := range j.Targets {
		j.Targets[i].Deployed, j.Targets[i].Finalized, j.Targets[i].Error = false, false, ""
	}
	j.Step = StepNone
}

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
	var j Journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, &JournalError{Path: p, KeyID: id, Err: err}
	}
	if j.Version != journalVersion || j.Old.ID != id || j.Step.index() < 0 {
		return nil, &JournalError{Path: p, KeyID: id, Err: fmt.Errorf("unknown version %d, step %q or key %q", j.Version, j.Step, j.Old.ID)}
	}
	return &j, nil
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
		var j Journal
		if err == nil && json.Unmarshal(data, &j) == nil && j.Old.ID == id && j.New != nil && j.Step == StepDone {
			return &j
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
		var j Journal
		if err != nil || json.Unmarshal(data, &j) != nil {
			continue
		}
		// Only steps this machine recorded vouch for a line: a rotation
		// carried on from the server was rebuilt from its facts, and a
		// create whose "created" line was not written yet has no step.
		if j.Adopted || !j.Step.Reached(StepCreated) {
			continue
		}
		count++
		latest = fmt.Sprintf("%s (%s, step %s)", p, j.Old.Prefix, j.Step)
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
