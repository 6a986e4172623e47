// Package rotlog is the rotation log: this machine's append-only record of
// every rotation's steps, a hash chain keyed with a key kept in the keyring,
// with a head file that shows a cut tail; and the team's history, merged
// from that log and what the server's keys tell.
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
	"strings"
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
)

// Entry is one line of the rotation log. Each carries the hash of the
// line before it, so an edited, inserted or deleted line breaks the chain.
// Chain says how the hash is made (ChainKeyed or ChainPlain; empty in logs
// written before the chain was keyed, which are plain).
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
	// Warn, when set, is told that an append fell back to the plain chain.
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
// keyed with a key kept in keys; warn (optional) hears of a fallback to the
// plain chain.
func OpenKeyed(stateDir string, keys secret.Store, warn func(string)) Log {
	l := Open(stateDir)
	l.Keys, l.Warn = keys, warn
	return l
}

// Append chains e onto the log and writes it, holding a lock so two plana
// processes cannot both take the same previous hash. The write is synced
// (and, when it created the log, its directory), so an entry reported
// written survives a power cut.
func (l Log) Append(e Entry) (Entry, error) {
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o700); err != nil {
		return e, err
	}
	lk := flock.New(l.Path+".lock", flock.SetPermissions(0o600))
	if err := lk.Lock(); err != nil {
		return e, fmt.Errorf("locking the rotation log: %w", err)
	}
	defer lk.Unlock()
	prev, lines, keyed, err := l.lastHash()
	if err != nil {
		return e, err
	}
	key, err := l.appendKey(keyed)
	if err != nil {
		return e, err
	}
	e.Time = e.Time.UTC()
	e.Chain = ChainKeyed
	if key == nil {
		e.Chain = ChainPlain
	}
	e.PrevHash = prev
	e.Hash = e.hash(key)
	b, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	_, statErr := os.Lstat(l.Path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return e, fmt.Errorf("opening the rotation log: %w", err)
	}
	// A log made readable by others (a copy, a umask) is tightened: state
	// files are never world-readable.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return e, fmt.Errorf("restricting the rotation log %s to its owner: %w", l.Path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return e, fmt.Errorf("appending to the rotation log %s: %w", l.Path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return e, fmt.Errorf("syncing the rotation log %s: %w", l.Path, err)
	}
	if err := f.Close(); err != nil {
		return e, err
	}
	if created {
		if err := atomicfile.SyncDir(filepath.Dir(l.Path)); err != nil {
			return e, err
		}
	}
	return e, l.writeHead(logHead{Entries: lines + 1, Hash: e.Hash})
}

// logHead records how long the log was and how it ended at the last append.
// The chain alone cannot tell that its last lines were cut off; the head can.
type logHead struct {
	Entries int    `json:"entries"`
	Hash    string `json:"hash"`
}

// HeadPath is the head file beside the log: how long the log was and how it
// ended at the last append.
func (l Log) HeadPath() string { return strings.TrimSuffix(l.Path, ".jsonl") + ".head" }

// readHead reads the head file: nil when there is none to read, ok false
// when it is damaged.
func (l Log) readHead() (h *logHead, ok bool) {
	b, err := os.ReadFile(l.HeadPath())
	if err != nil {
		return nil, true
	}
	h = new(logHead)
	if json.Unmarshal(b, h) != nil {
		return nil, false
	}
	return h, true
}

func (l Log) writeHead(h logHead) error {
	b, _ := json.Marshal(h)
	if err := atomicfile.WriteFile(l.HeadPath(), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording the rotation log's head: %w", err)
	}
	return nil
}

// lastHash reads the log's last entry's hash, whether that entry is keyed
// (a keyed log stays keyed), and how many lines the log has, for the head
// file. It reads the log's end, not the whole log: a fleet's appends each
// read all of a growing log, a year's log at every step of every rotation.
// The line count is the head's when the head ends where the log does.
func (l Log) lastHash() (hash string, lines int, keyed bool, err error) {
	f, err := os.Open(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, false, err
	}
	var data []byte
	cut := -1
	for tail := int64(logTail); ; tail = fi.Size() {
		from := max(fi.Size()-tail, 0)
		data = make([]byte, fi.Size()-from)
		if _, err := f.ReadAt(data, from); err != nil && err != io.EOF {
			return "", 0, false, err
		}
		data = bytes.TrimRight(data, "\n")
		// A last line longer than the tail is read whole.
		if cut = bytes.LastIndexByte(data, '\n'); cut >= 0 || from == 0 {
			break
		}
	}
	if len(data) == 0 {
		lines, err := countLines(f)
		return "", lines, false, err
	}
	var e Entry
	if err := json.Unmarshal(data[cut+1:], &e); err != nil || e.Hash == "" {
		return "", 0, false, fmt.Errorf("the last line of the rotation log %s is damaged; check it with plana keys log (which verifies the chain), and move the file aside to start a new log", l.Path)
	}
	if h, ok := l.readHead(); ok && h != nil && h.Hash == e.Hash {
		lines = h.Entries
	} else if lines, err = countLines(f); err != nil {
		return "", 0, false, err
	}
	return e.Hash, lines, e.Chain == ChainKeyed, nil
}

// logTail is how much of the log's end lastHash reads: many entries.
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

// ChainError says where the rotation log's hash chain breaks.
type ChainError struct {
	Path string
	Line int
	Why  string
}

func (e *ChainError) Error() string {
	head := Log{Path: e.Path}.HeadPath()
	return fmt.Sprintf("rotation log %s: line %d %s: the log was edited, truncated, or a line was inserted or deleted. "+
		"Keep it as evidence (mv %s %s.damaged; mv %s %s.damaged); the next rotation starts a new log, and the server's keys and execution log still say what happened",
		e.Path, e.Line, e.Why, e.Path, e.Path, head, head)
}

// Verify checks the hash chain of the whole log, and that it still reaches
// the entry the head file recorded at the last append; it returns a
// *ChainError at the first line that does not follow from the one before.
// Keyed lines are checked with the key in l.Keys; plain lines are accepted
// only before the first keyed one, and not at all when the keyring holds
// this log's key: otherwise rewriting lines as plain ones would pass. A log
// gone with its head is reported when journals show it had entries.
func (l Log) Verify() error {
	head, ok := l.readHead()
	if !ok {
		return &ChainError{Path: l.Path, Line: 0, Why: "has a damaged head file " + l.HeadPath()}
	}
	f, err := os.Open(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if head != nil && head.Entries > 0 {
			return &ChainError{Path: l.Path, Line: 1, Why: fmt.Sprintf("is missing: the file is gone, but %d entries were written", head.Entries)}
		}
		if l.Witness == nil {
			return nil
		}
		if ev := l.Witness(); ev != "" {
			return &ChainError{Path: l.Path, Line: 1, Why: "is missing with its head: " + ev}
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var key []byte
	prev, keyed := "", false
	n := 1
	for ; sc.Scan(); n++ {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return &ChainError{Path: l.Path, Line: n, Why: "is not a log entry"}
		}
		if e.PrevHash != prev {
			return &ChainError{Path: l.Path, Line: n, Why: "does not follow the line before it"}
		}
		switch e.Chain {
		case ChainKeyed:
			if key == nil {
				if key, err = l.verifyKey(n); err != nil {
					return err
				}
			}
			keyed = true
		case "", ChainPlain:
			if keyed {
				return &ChainError{Path: l.Path, Line: n, Why: "is not keyed though the lines before it are (rewritten without the keyring's key?)"}
			}
		default:
			return &ChainError{Path: l.Path, Line: n, Why: fmt.Sprintf("names an unknown chain %q", e.Chain)}
		}
		if e.hash(key) != e.Hash {
			return &ChainError{Path: l.Path, Line: n, Why: "does not match its hash"}
		}
		if head != nil && n == head.Entries && e.Hash != head.Hash {
			return &ChainError{Path: l.Path, Line: n, Why: "is not the entry written there"}
		}
		prev = e.Hash
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if !keyed && n > 1 && l.hasKey() {
		return &ChainError{Path: l.Path, Line: 1, Why: "is not keyed, though the keyring holds the key this log is chained with (its lines were rewritten without the key, or written while the keyring was locked)"}
	}
	// More lines than the head says is a crash between the append and the
	// head's update; fewer is lines cut off the end.
	if head != nil && n-1 < head.Entries {
		return &ChainError{Path: l.Path, Line: n, Why: fmt.Sprintf("is missing: the log ends after %d entries, but %d were written", n-1, head.Entries)}
	}
	return nil
}
