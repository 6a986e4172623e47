// Package rotlog is the rotation log: this machine's append-only record of
// every rotation's steps, a hash chain keyed with a key kept in the keyring,
// with a keyed head file, and the entry count and last hash kept in the
// keyring beside the key, so that a cut tail or an older copy put back is
// reported; and the team's history, merged from that log and what the
// server's keys tell.
package rotlog

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/plana-cli/plana/internal/atomicfile"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/ref"
)

// FileName is the rotation log inside the state directory.
const FileName = "rotation-log.jsonl"

// Events of the rotation log.
const (
	EventCreated   = "created"   // step 1: new key issued and stored
	EventAbandoned = "abandoned" // a successor whose plaintext was lost, revoked
	EventDeployed  = "deployed"  // step 2
	EventVerified  = "verified"  // step 3: the gate held
	EventFinalized = "finalized" // step 4
	EventRevoked   = "revoked"   // step 5: the old key revoked
	EventRotated   = "rotated"   // the whole rotation finished
	// EventJoined: this machine carries on a rotation whose successor it
	// did not create (another machine did, or this one before its journal
	// was lost).
	EventJoined = "joined"
	// EventAborted is a rotation called off before the revoke (--abort).
	EventAborted = "aborted"
	// EventRestarted begins a log started while this machine's keyring
	// still knew of a log that is not there whole: the line says what was
	// lost, keyed, so the loss stays on record.
	EventRestarted = "log-restarted"
)

// Entry is one line of the rotation log. Each carries the hash of the
// line before it, so an edited, inserted or deleted line breaks the chain.
// Chain says how the hash is made (ChainKeyed, ChainPlain or ChainUnkeyed;
// empty in logs written before the chain was keyed, which are plain).
type Entry struct {
	Time     time.Time `json:"time"` // server time
	Event    string    `json:"event"`
	Old      ref.Key   `json:"old"`
	New      *ref.Key  `json:"new,omitempty"`
	Reason   string    `json:"reason"`
	Actor    ref.Actor `json:"actor"`
	Detail   string    `json:"detail,omitempty"`
	Chain    string    `json:"chain,omitempty"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash,omitempty"`
	// Unverified, set by Check, says the line could not be verified here
	// (see Checked); it is not part of the line.
	Unverified bool `json:"-"`
}

// hash is the entry's HMAC-SHA256 under key, or its plain SHA-256 when key
// is nil, over its JSON without its own hash (Go marshals struct fields in
// declaration order, so the encoding is canonical; an empty Chain is left
// out, so lines written before it existed hash as they did).
func (e Entry) hash(key []byte) string {
	e.Hash = ""
	e.Time = e.Time.UTC()
	b, _ := json.Marshal(e)
	if key == nil {
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// Log is the append-only JSONL log of rotations.
type Log struct {
	Path string
	// Keys is the keyring holding the key of the log's HMAC chain. Without
	// one (nil, or a keyring that does not answer) a log not keyed yet is
	// chained with plain SHA-256, which anyone who can write the file can
	// recompute.
	Keys secret.Store
	// Warn, when set, is told that an append fell back to the plain chain,
	// was appended unkeyed, or found the log cut or replaced.
	Warn func(string)
	// Witness, when set, says what else on this machine shows the log had
	// entries (the rotations' journals), "" when nothing does: a log gone
	// with its head is then reported, not taken for a new one.
	Witness func() string
}

// Open returns the rotation log of a state directory, without a keyring:
// it appends to the plain chain and cannot check a keyed one.
func Open(stateDir string) Log {
	return Log{Path: filepath.Join(stateDir, FileName)}
}

// OpenKeyed returns the rotation log of a state directory whose chain is
// keyed with a key kept in keys; warn (optional) hears of an entry that
// could not be keyed.
func OpenKeyed(stateDir string, keys secret.Store, warn func(string)) Log {
	l := Open(stateDir)
	l.Keys, l.Warn = keys, warn
	return l
}

// Append chains e onto the log and writes it, holding a lock so two plana
// processes cannot both take the same previous hash. The write is synced
// (and, when it created the log, its directory), so an entry reported
// written survives a power cut.
//
// No record is dropped for want of a keyring: without the log's key (cron,
// a fresh keyring) the entry is appended unkeyed, which Check reports as
// not verified. With the key, the keyring's record of the log (its first
// entry, how many entries, the last hash) moves on with the append, unless
// the log no longer holds what the record says: then the entry is still
// appended, the record left as evidence, and Warn told.
func (l Log) Append(e Entry) (Entry, error) {
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o700); err != nil {
		return e, err
	}
	lk := flock.New(l.Path+".lock", flock.SetPermissions(0o600))
	if err := lk.Lock(); err != nil {
		return e, fmt.Errorf("locking the rotation log: %w", err)
	}
	defer lk.Unlock()
	t, err := l.tip()
	if err != nil {
		return e, err
	}
	key := l.appendKey(t.keyed)
	began := t.lines == 0
	var rec *record
	known := false
	if key != nil {
		rec, known = l.readRecord()
		if began && known && rec != nil && rec.Entries > 0 && !l.movedAside(*rec) {
			// The log this keyring knows is gone, and not moved aside
			// whole: the new log begins by saying so, keyed.
			lost := Entry{Time: e.Time, Event: EventRestarted, Old: e.Old, Actor: e.Actor,
				Reason: fmt.Sprintf("the log before this one (%d entries, the last %s…) was not found whole: cut, rolled back or deleted", rec.Entries, short(rec.Hash))}
			if t, err = l.write(t, lost, key); err != nil {
				return e, err
			}
			rec = nil
		}
	}
	if t, err = l.write(t, e, key); err != nil {
		return e, err
	}
	if known {
		l.advance(rec, began, t)
	}
	return t.last, nil
}

// write chains e onto the log whose end is t, with key (nil: the plain
// chain, or unkeyed in a keyed log), and records the head; it returns the
// log's new end.
func (l Log) write(t tip, e Entry, key []byte) (tip, error) {
	e.Time = e.Time.UTC()
	switch {
	case key != nil:
		e.Chain = ChainKeyed
	case t.keyed:
		e.Chain = ChainUnkeyed
	default:
		e.Chain = ChainPlain
	}
	e.PrevHash = t.hash
	e.Hash = e.hash(key)
	b, err := json.Marshal(e)
	if err != nil {
		return t, err
	}
	created := t.lines == 0
	f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return t, fmt.Errorf("opening the rotation log: %w", err)
	}
	// A log made readable by others (a copy, a umask) is tightened: state
	// files are never world-readable.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return t, fmt.Errorf("restricting the rotation log %s to its owner: %w", l.Path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return t, fmt.Errorf("appending to the rotation log %s: %w", l.Path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return t, fmt.Errorf("syncing the rotation log %s: %w", l.Path, err)
	}
	if err := f.Close(); err != nil {
		return t, err
	}
	if created {
		if err := atomicfile.SyncDir(filepath.Dir(l.Path)); err != nil {
			return t, err
		}
	}
	if t.lines == 0 {
		t.first = e.Hash
	}
	t.lines, t.hash, t.last, t.keyed = t.lines+1, e.Hash, e, e.Chain != ChainPlain
	return t, l.writeHead(newHead(t.lines, e.Hash, key))
}

// tip is where the log ends: its last entry's hash, how many lines it has,
// whether it is keyed (its last line is keyed, or unkeyed in a keyed log),
// and its first entry's hash, which names the log.
type tip struct {
	hash, first string
	lines       int
	keyed       bool
	last        Entry
}

// tip reads the end of the log, not the whole log: a fleet's appends each
// read all of a growing log, a year's log at every step of every rotation.
// The line count is the head's when the head ends where the log does.
func (l Log) tip() (tip, error) {
	f, err := os.Open(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return tip{}, nil
	}
	if err != nil {
		return tip{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return tip{}, err
	}
	var data []byte
	cut := -1
	for tail := int64(logTail); ; tail = fi.Size() {
		from := max(fi.Size()-tail, 0)
		data = make([]byte, fi.Size()-from)
		if _, err := f.ReadAt(data, from); err != nil && err != io.EOF {
			return tip{}, err
		}
		data = bytes.TrimRight(data, "\n")
		// A last line longer than the tail is read whole.
		if cut = bytes.LastIndexByte(data, '\n'); cut >= 0 || from == 0 {
			break
		}
	}
	if len(data) == 0 {
		lines, err := countLines(f)
		return tip{lines: lines}, err
	}
	var e Entry
	if err := json.Unmarshal(data[cut+1:], &e); err != nil || e.Hash == "" {
		return tip{}, fmt.Errorf("the last line of the rotation log %s is damaged; check it with plana keys log (which verifies the chain), and move the file aside to start a new log", l.Path)
	}
	t := tip{hash: e.Hash, keyed: e.Chain == ChainKeyed || e.Chain == ChainUnkeyed, last: e}
	if h, ok := l.readHead(); ok && h != nil && h.Hash == e.Hash {
		t.lines = h.Entries
	} else if t.lines, err = countLines(f); err != nil {
		return tip{}, err
	}
	t.first, _ = firstHash(f)
	return t, nil
}

// logTail is how much of the log's end tip reads: many entries.
const logTail = 16 << 10

// countLines counts f's newlines, a buffer at a time.
func countLines(f *os.File) (int, error) {
	buf := make([]byte, 32<<10)
	n := 0
	for off := int64(0); ; {
		k, err := f.ReadAt(buf, off)
		n += bytes.Count(buf[:k], []byte{'\n'})
		off += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// Entries reads the whole log, oldest first. A missing log is empty.
func (l Log) Entries() ([]Entry, error) {
	f, err := os.Open(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readEntries(f, l.Path)
}

func readEntries(r io.Reader, name string) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("%s line %d is not a log entry: %v", name, n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
