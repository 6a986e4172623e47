package rotlog

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/plana-cli/plana/internal/atomicfile"
	"github.com/plana-cli/plana/internal/secret"
)

// The chain alone cannot tell that its last lines were cut off, or that an
// older copy of the log was put back: every line still follows the one
// before it. Two things can: the head file beside the log, keyed with the
// log's key so that it cannot be rewritten to match a shorter log; and the
// record kept in the keyring beside the key, out of reach of whoever can
// only write files, which also survives the log and its head being put
// back together.

// logHead records how long the log was and how it ended at the last append,
// with an HMAC under the log's key when the append had it.
type logHead struct {
	Entries int    `json:"entries"`
	Hash    string `json:"hash"`
	MAC     string `json:"mac,omitempty"`
}

func newHead(entries int, hash string, key []byte) logHead {
	h := logHead{Entries: entries, Hash: hash}
	if key != nil {
		h.MAC = h.mac(key)
	}
	return h
}

func (h logHead) mac(key []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "rotation-log head\n%d\n%s\n", h.Entries, h.Hash)
	return hex.EncodeToString(m.Sum(nil))
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

// record is what the keyring keeps of the log beside its key: which log
// (its first entry's hash), how many entries it had and the last one's
// hash, as of the last append made with the key.
type record struct {
	First   string `json:"first"`
	Entries int    `json:"entries"`
	Hash    string `json:"hash"`
}

// recordName is the keyring entry of the log's record: named after the
// log's state directory, like its key, so that two state directories
// sharing a keyring never read each other's.
func (l Log) recordName() string {
	return "rotation-log-head:" + strings.TrimPrefix(l.keyName(), "rotation-log:")
}

// readRecord reads the log's record: nil with ok when the keyring holds
// none, ok false when it could not be read (the caller then neither trusts
// nor replaces it).
func (l Log) readRecord() (rec *record, ok bool) {
	if l.Keys == nil {
		return nil, false
	}
	v, err := l.Keys.Get(l.recordName())
	if errors.Is(err, secret.ErrNotFound) {
		return nil, true
	}
	if err != nil {
		return nil, false
	}
	rec = new(record)
	if json.Unmarshal([]byte(v), rec) != nil {
		return nil, false
	}
	return rec, true
}

// advance moves the record on to the log's new end t, when the log still
// holds what the record says (or the record was of a log moved aside
// whole, and t began a new one); otherwise it leaves the record as it is,
// the evidence Check reports, and warns.
func (l Log) advance(rec *record, began bool, t tip) {
	switch {
	case rec == nil:
	case rec.First == t.first && l.holds(*rec, t):
	case began && (rec.Entries == 0 || l.movedAside(*rec)):
	default:
		l.warn(fmt.Sprintf("the rotation log %s does not hold what this machine's keyring records of it (%d entries, the last %s…): it was cut, rolled back or replaced; the entry was appended, and plana keys log reports the rest", l.Path, rec.Entries, short(rec.Hash)))
		return
	}
	b, _ := json.Marshal(record{First: t.first, Entries: t.lines, Hash: t.hash})
	if err := l.Keys.Set(l.recordName(), string(b)); err != nil {
		l.warn(fmt.Sprintf("the rotation log's record in the keyring was not updated (%v): a cut of its last entries would go unseen", err))
	}
}

func (l Log) warn(s string) {
	if l.Warn != nil {
		l.Warn(s)
	}
}

// holds reports whether the log, ending at t, has rec's last entry where
// rec says it is.
func (l Log) holds(rec record, t tip) bool {
	if rec.Entries == t.lines {
		return rec.Hash == t.hash
	}
	f, err := os.Open(l.Path)
	if err != nil {
		return false
	}
	defer f.Close()
	h, ok := hashAt(f, rec.Entries)
	return ok && h == rec.Hash
}

// movedAside reports whether a copy beside the log (rotation-log.jsonl.*,
// as ChainError advises) is rec's log and still holds its last entry: a
// log moved aside on purpose, evidence kept, whose record may be let go.
// Where in the copy that entry is does not matter (a damaged copy may have
// gained or lost a line before it); that the copy has it does.
func (l Log) movedAside(rec record) bool {
	aside, _ := filepath.Glob(l.Path + ".*")
	for _, p := range aside {
		if p == l.Path+".lock" {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		first, _ := firstHash(f)
		held := first == rec.First && hasHash(f, rec.Hash)
		f.Close()
		if held {
			return true
		}
	}
	return false
}

// firstHash is the hash of the first entry of the log f.
func firstHash(f *os.File) (string, bool) { return hashAt(f, 1) }

// hashAt is the hash line n (from 1) of the log f records for itself.
func hashAt(f *os.File, n int) (string, bool) {
	found, at := "", 0
	eachHash(f, func(i int, h string) bool {
		at = i
		if i == n {
			found = h
		}
		return i < n
	})
	return found, at == n && found != ""
}

// hasHash reports whether a line of the log f records h as its hash.
func hasHash(f *os.File, h string) bool {
	found := false
	eachHash(f, func(_ int, lh string) bool {
		found = lh == h
		return !found
	})
	return found
}

// eachHash calls fn with each line's number (from 1) and the hash it
// records ("" for a line that is not an entry), until fn returns false.
func eachHash(f *os.File, fn func(n int, hash string) bool) {
	r := bufio.NewReader(io.NewSectionReader(f, 0, 1<<62))
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err != nil {
			return
		}
		var e struct {
			Hash string `json:"hash"`
		}
		if json.Unmarshal(line, &e) != nil {
			e.Hash = ""
		}
		if !fn(n, e.Hash) || err != nil {
			return
		}
	}
}

// short is the start of a hash, enough to tell it in a message.
func short(h string) string { return h[:min(len(h), 12)] }
