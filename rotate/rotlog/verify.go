package rotlog

import (
	"bufio"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ChainError says where the rotation log's hash chain breaks, or that the
// log was cut, rolled back or replaced.
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

// Checked is the log as Check read it.
type Checked struct {
	// Entries are the log's lines, oldest first; Unverified marks those
	// that could not be verified here.
	Entries []Entry
	// Unverified counts them; Why says why, "" when every line was.
	Unverified int
	Why        string
	// Restarted are the log-restarted lines: a log this machine's keyring
	// knew was not found whole when this one began.
	Restarted []Entry
}

// Verify is Check without the entries: nil unless the log was tampered
// with (a *ChainError) or could not be read. Lines it could not verify
// here are not an error.
func (l Log) Verify() error {
	_, err := l.Check()
	return err
}

// Check reads the whole log and checks it: that each line follows from the
// one before (the hash chain); that keyed lines match their HMAC under the
// key in l.Keys; that the log still reaches the entry the head file and the
// keyring's record say was written last, and is the log the record names.
// It returns a *ChainError at the first thing that does not hold.
//
// Plain lines are accepted only before the first keyed one, and not at all
// when the keyring holds this log's key: otherwise rewriting lines as plain
// ones would pass. A line is verified when it is keyed and its HMAC holds,
// or a verified keyed line follows it (that line's HMAC covers the chain
// up to it): what follows the last verified line (lines appended without
// the key, or every line where the key cannot be read) is marked
// Unverified, with why. A log gone with its head is reported when the
// record, or the journals (Witness), show it had entries.
func (l Log) Check() (Checked, error) {
	var c Checked
	head, ok := l.readHead()
	if !ok {
		return c, &ChainError{Path: l.Path, Line: 0, Why: "has a damaged head file " + l.HeadPath()}
	}
	key, why := l.verifyKey()
	var rec *record
	if key != nil {
		rec, _ = l.readRecord()
	}
	f, err := os.Open(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, l.missing(head, rec)
	}
	if err != nil {
		return c, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prev, keyed, first := "", false, ""
	verified := 0 // lines up to the last verified keyed one
	n := 1
	for ; sc.Scan(); n++ {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return c, &ChainError{Path: l.Path, Line: n, Why: "is not a log entry"}
		}
		if e.PrevHash != prev {
			return c, &ChainError{Path: l.Path, Line: n, Why: "does not follow the line before it"}
		}
		var lineKey []byte
		switch e.Chain {
		case ChainKeyed:
			keyed, lineKey = true, key
		case "", ChainPlain:
			if keyed {
				return c, &ChainError{Path: l.Path, Line: n, Why: "is not keyed though the lines before it are (rewritten without the keyring's key?)"}
			}
		case ChainUnkeyed:
			if !keyed {
				return c, &ChainError{Path: l.Path, Line: n, Why: "says it was appended without the key of a keyed log, but no line before it is keyed"}
			}
		default:
			return c, &ChainError{Path: l.Path, Line: n, Why: fmt.Sprintf("names an unknown chain %q", e.Chain)}
		}
		switch {
		case e.Chain == ChainKeyed && key == nil:
			// Its HMAC cannot be checked here; its place in the chain can.
		case e.hash(lineKey) != e.Hash:
			return c, &ChainError{Path: l.Path, Line: n, Why: "does not match its hash"}
		case e.Chain == ChainKeyed:
			verified = n
		}
		if n == 1 {
			first = e.Hash
		}
		if head != nil && n == head.Entries {
			if err := l.checkHead(*head, e, n, key, rec); err != nil {
				return c, err
			}
		}
		if rec != nil && rec.First == first && n == rec.Entries && e.Hash != rec.Hash {
			return c, &ChainError{Path: l.Path, Line: n, Why: "is not the entry this machine's keyring records there (an older or another copy of the log was put back)"}
		}
		if e.Event == EventRestarted {
			c.Restarted = append(c.Restarted, e)
		}
		c.Entries = append(c.Entries, e)
		prev = e.Hash
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	lines := n - 1
	if !keyed && lines > 0 && key != nil {
		return c, &ChainError{Path: l.Path, Line: 1, Why: "is not keyed, though the keyring holds the key this log is chained with (its lines were rewritten without the key, or written while the keyring was locked)"}
	}
	// More lines than the head or the record says is a crash between the
	// append and their update; fewer is lines cut off the end.
	if head != nil && lines < head.Entries {
		return c, &ChainError{Path: l.Path, Line: n, Why: fmt.Sprintf("is missing: the log ends after %d entries, but %d were written", lines, head.Entries)}
	}
	if err := l.checkRecord(rec, first, lines); err != nil {
		return c, err
	}
	for i := verified; i < len(c.Entries); i++ {
		c.Entries[i].Unverified = true
		c.Unverified++
	}
	switch {
	case c.Unverified == 0:
	case !keyed:
		c.Why = "the log is chained with plain SHA-256 (written without a keyring), which anyone who can write it can recompute"
	case key == nil:
		c.Why = "its lines are keyed, and " + why
	default:
		c.Why = "they were appended without the log's key (no keyring at the time), and nothing keyed vouches for them since"
	}
	return c, nil
}

// checkHead checks line n, e, against the head file that names it: its
// hash, and the head's own HMAC where it can be checked. A head without
// one that names a keyed line is accepted only while the keyring holds no
// record (a head written before heads were keyed).
func (l Log) checkHead(h logHead, e Entry, n int, key []byte, rec *record) error {
	switch {
	case e.Hash != h.Hash:
		return &ChainError{Path: l.Path, Line: n, Why: "is not the entry written there"}
	case h.MAC != "" && key != nil && !hmac.Equal([]byte(h.MAC), []byte(h.mac(key))):
		return &ChainError{Path: l.Path, Line: n, Why: "is where the head file says the log ends, but the head file was rewritten without the log's key (" + l.HeadPath() + ")"}
	case h.MAC == "" && e.Chain == ChainKeyed && rec != nil:
		return &ChainError{Path: l.Path, Line: n, Why: "is a keyed entry, but the head file naming it is not keyed (rewritten without the log's key: " + l.HeadPath() + ")"}
	}
	return nil
}

// checkRecord holds the log, first and lines long, to the keyring's record:
// the same log, at least as long. A log that is not the record's passes
// only when the record's log was moved aside whole.
func (l Log) checkRecord(rec *record, first string, lines int) error {
	switch {
	case rec == nil || rec.Entries == 0:
		return nil
	case first != rec.First:
		if l.movedAside(*rec) {
			return nil
		}
		return &ChainError{Path: l.Path, Line: 1, Why: fmt.Sprintf("is not the first entry of the log this machine's keyring records (%d entries, the last %s…): the log was replaced", rec.Entries, short(rec.Hash))}
	case lines < rec.Entries:
		return &ChainError{Path: l.Path, Line: lines + 1, Why: fmt.Sprintf("is missing: the log ends after %d entries, but this machine's keyring records %d were written (cut off, or an older copy put back with its head)", lines, rec.Entries)}
	}
	return nil
}

// missing is Check of a log whose file is gone: an error when its head,
// the keyring's record (unless the log was moved aside whole) or the
// journals show it had entries.
func (l Log) missing(head *logHead, rec *record) error {
	switch {
	case head != nil && head.Entries > 0:
		return &ChainError{Path: l.Path, Line: 1, Why: fmt.Sprintf("is missing: the file is gone, but %d entries were written", head.Entries)}
	}
	ev := ""
	if l.Witness != nil {
		ev = l.Witness()
	}
	switch {
	case rec != nil && rec.Entries > 0 && !l.movedAside(*rec):
		why := fmt.Sprintf("is missing with its head: this machine's keyring records %d entries were written, and no copy moved aside holds them", rec.Entries)
		if ev != "" {
			why += "; " + ev
		}
		return &ChainError{Path: l.Path, Line: 1, Why: why}
	case ev != "":
		return &ChainError{Path: l.Path, Line: 1, Why: "is missing with its head: " + ev}
	}
	return nil
}
