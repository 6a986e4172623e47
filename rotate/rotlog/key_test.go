package rotlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/ref"
)

func appendEntries(t *testing.T, l Log, events ...string) {
	t.Helper()
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, ev := range events {
		if _, err := l.Append(Entry{Time: base.Add(time.Duration(i) * time.Minute), Event: ev, Old: ref.Key{ID: "key_1", Prefix: "pa_live_AAAAAAAA"},
			Reason: "scheduled", Actor: ref.Actor{Email: "ana@example.com", Local: "ana@box"}}); err != nil {
			t.Fatal(err)
		}
	}
}

func readLog(t *testing.T, l Log) []Entry {
	t.Helper()
	es, err := l.Entries()
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// forge rewrites the log as someone who can write the state directory but
// not read the keyring would: edit, then recompute the plain chain and the
// head from the first edited line on.
func forge(t *testing.T, l Log, edit func(i int, e *Entry) bool) {
	t.Helper()
	es := readLog(t, l)
	prev, forging := "", false
	for i := range es {
		e := &es[i]
		if edit(i, e) {
			forging = true
		}
		if forging {
			e.PrevHash = prev
			e.Hash = e.hash(nil)
		}
		prev = e.Hash
	}
	writeLines(t, l, es)
}

// writeLines writes es as the whole log, with a head that ends at the last.
func writeLines(t *testing.T, l Log, es []Entry) {
	t.Helper()
	var out bytes.Buffer
	for _, e := range es {
		b, _ := json.Marshal(e)
		out.Write(append(b, '\n'))
	}
	if err := os.WriteFile(l.Path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.writeHead(logHead{Entries: len(es), Hash: es[len(es)-1].Hash}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyedLogDetectsARewriteWithThePlainChain(t *testing.T) {
	tests := []struct {
		name string
		edit func(i int, e *Entry) bool
		why  string
	}{
		{"actor rewritten, label kept", func(i int, e *Entry) bool {
			if i == 1 {
				e.Actor = ref.Actor{Email: "mallory@example.com"}
			}
			return i == 1
		}, "line 2 does not match its hash"},
		{"actor rewritten, later lines relabelled plain", func(i int, e *Entry) bool {
			if i == 1 {
				e.Actor = ref.Actor{Email: "mallory@example.com"}
			}
			if i >= 1 {
				e.Chain = ChainPlain
			}
			return i == 1
		}, "line 2 is not keyed though the lines before it are"},
		{"actor rewritten, every line relabelled plain", func(i int, e *Entry) bool {
			if i == 1 {
				e.Actor = ref.Actor{Email: "mallory@example.com"}
			}
			e.Chain = ""
			return true
		}, "line 1 is not keyed, though the keyring holds the key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			keys := secret.NewMemory()
			l := OpenKeyed(dir, keys, nil)
			appendEntries(t, l, EventCreated, EventDeployed, EventRevoked)
			for _, e := range readLog(t, l) {
				if e.Chain != ChainKeyed {
					t.Fatalf("with a keyring, an entry is chained %q, want %q", e.Chain, ChainKeyed)
				}
			}
			if _, err := keys.Get(keyNameOf(dir)); err != nil {
				t.Fatalf("the log's key is not in the keyring: %v", err)
			}
			if err := l.Verify(); err != nil {
				t.Fatal(err)
			}
			forge(t, l, tt.edit)
			var ce *ChainError
			if err := l.Verify(); !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("want a ChainError saying %q, got %v", tt.why, err)
			}
			// The same forgery passes the plain check a log without a
			// keyring gets: the keyring is what catches it.
			if tt.name == "actor rewritten, every line relabelled plain" {
				if err := Open(dir).Verify(); err != nil {
					t.Errorf("the forged plain chain is consistent in itself: %v", err)
				}
			}
		})
	}
}

// A log written by plana before the chain was keyed (no "chain" field)
// still verifies, and carries on keyed once a keyring is there.
func TestPlainLogCarriesOnKeyed(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	legacy := []string{
		`{"time":"2026-03-01T10:00:00Z","event":"created","old":{"id":"key_1","prefix":"pa_live_AAAAAAAA","name":""},"reason":"scheduled","actor":{"email":"ana@example.com"},"prev_hash":"","hash":"%s"}`,
	}
	var e Entry
	if err := json.Unmarshal([]byte(strings.Replace(legacy[0], "%s", "", 1)), &e); err != nil {
		t.Fatal(err)
	}
	line := strings.Replace(legacy[0], "%s", e.hash(nil), 1)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyed := OpenKeyed(dir, secret.NewMemory(), nil)
	if err := keyed.Verify(); err != nil {
		t.Fatalf("a log of today's plain chain: %v", err)
	}
	appendEntries(t, keyed, EventDeployed)
	if err := keyed.Verify(); err != nil {
		t.Fatalf("plain, then keyed: %v", err)
	}
	if es := readLog(t, keyed); es[0].Chain != "" || es[1].Chain != ChainKeyed {
		t.Errorf("chains %q, %q: want the old line untouched and the new one keyed", es[0].Chain, es[1].Chain)
	}
}

// Without a keyring the log falls back to the plain chain, says so once,
// and records the chain in each line.
func TestLogWithoutKeyringFallsBackToPlain(t *testing.T) {
	dir := t.TempDir()
	var warned []string
	hung := secret.NewMemory()
	hung.Hang = make(chan struct{})
	t.Cleanup(func() { close(hung.Hang) })
	for name, keys := range map[string]secret.Store{"none": nil, "not answering": secret.WithTimeout(hung, 20*time.Millisecond)} {
		warned = nil
		l := OpenKeyed(filepath.Join(dir, name), keys, func(s string) { warned = append(warned, s) })
		appendEntries(t, l, EventCreated, EventDeployed)
		if len(warned) != 1 || !strings.Contains(warned[0], "plain SHA-256") {
			t.Errorf("%s: want one warning about the plain chain, got %q", name, warned)
		}
		for _, e := range readLog(t, l) {
			if e.Chain != ChainPlain {
				t.Errorf("%s: entry chained %q, want %q", name, e.Chain, ChainPlain)
			}
		}
		if err := l.Verify(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A keyed log stays keyed: without its key an entry is appended
	// unkeyed, never dropped, and what cannot be checked here is said.
	keys := secret.NewMemory()
	l := OpenKeyed(filepath.Join(dir, "keyed"), keys, nil)
	appendEntries(t, l, EventCreated)
	warned = nil
	locked := OpenKeyed(filepath.Join(dir, "keyed"), secret.WithTimeout(hung, 20*time.Millisecond), func(s string) { warned = append(warned, s) })
	if _, err := locked.Append(Entry{Event: EventDeployed}); err != nil {
		t.Fatalf("append to a keyed log without its key: %v", err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "appended unkeyed") {
		t.Errorf("want one warning that the entry is unkeyed, got %q", warned)
	}
	if es := readLog(t, l); len(es) != 2 || es[1].Chain != ChainUnkeyed {
		t.Fatalf("the entry appended without the key: %+v", es)
	}
	c, err := locked.Check()
	if err != nil || c.Unverified != 2 || !strings.Contains(c.Why, "does not answer") {
		t.Errorf("check without the keyring: %v, %d unverified (%s), want both lines, saying why", err, c.Unverified, c.Why)
	}
	if c, err := l.Check(); err != nil || c.Unverified != 1 || !c.Entries[1].Unverified || !strings.Contains(c.Why, "appended without the log's key") {
		t.Errorf("check with the key back: %v, %+v", err, c)
	}
	if err := keys.Delete(keyNameOf(filepath.Join(dir, "keyed"))); err != nil {
		t.Fatal(err)
	}
	if c, err := l.Check(); err != nil || c.Unverified != 2 || !strings.Contains(c.Why, "holds no key for this log") {
		t.Errorf("check after the key was deleted (a fresh keyring): %v, %+v", err, c)
	}
}

// With the OS keyring (run under scripts/with-keyring.sh), the log's key
// lives there and the chain is keyed.
func TestKeyedLogWithTheOSKeyring(t *testing.T) {
	keys := secret.NewKeyring(0)
	if err := secret.Probe(keys); err != nil {
		t.Skip("no Secret Service keyring answers: run under scripts/with-keyring.sh: ", err)
	}
	dir := t.TempDir()
	l := OpenKeyed(dir, keys, func(s string) { t.Errorf("unexpected warning: %s", s) })
	t.Cleanup(func() { keys.Delete(keyNameOf(dir)); keys.Delete(l.recordName()) })
	appendEntries(t, l, EventCreated, EventDeployed)
	if es := readLog(t, l); es[0].Chain != ChainKeyed || es[1].Chain != ChainKeyed {
		t.Fatalf("chains %q, %q, want keyed", es[0].Chain, es[1].Chain)
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	// The keyring's record of the log catches the last entry cut, the
	// head gone with it.
	log, head := save(t, l)
	writeLines(t, l, readLog(t, l)[:1])
	os.Remove(l.HeadPath())
	wantChainError(t, l, "this machine's keyring records 2 were written")
	putBack(t, l, log, head)
	forge(t, l, func(i int, e *Entry) bool { e.Chain = ""; return i == 0 })
	if err := l.Verify(); err == nil {
		t.Fatal("a rewrite as a plain chain passed")
	}
}

// An append reads the log's end, not the whole log: a fleet appends at
// every step of every rotation to a log that keeps growing for years.
func TestAppendReadsOnlyTheLogsEnd(t *testing.T) {
	for _, withHead := range []bool{true, false} {
		dir := t.TempDir()
		l := Open(dir)
		appendEntries(t, l, EventCreated)
		const n = 5000 // about 1.5 MB
		first := readLog(t, l)[0]
		es := make([]Entry, n)
		prev := ""
		for i := range es {
			e := first
			e.Time, e.PrevHash = e.Time.Add(time.Duration(i)*time.Second), prev
			e.Hash = e.hash(nil)
			prev, es[i] = e.Hash, e
		}
		writeLines(t, l, es)
		fi, err := os.Stat(l.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !withHead {
			os.Remove(l.HeadPath())
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		appendEntries(t, l, EventDeployed)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
			t.Errorf("head %v: one append to a %d-byte log allocated %d bytes, want it to read only the end", withHead, fi.Size(), alloc)
		}
		if err := l.Verify(); err != nil {
			t.Errorf("head %v: %v", withHead, err)
		}
		b, _ := os.ReadFile(l.HeadPath())
		var h logHead
		if json.Unmarshal(b, &h) != nil || h.Entries != n+1 {
			t.Errorf("head %v: head %s, want %d entries", withHead, b, n+1)
		}
	}
}

// BenchmarkAppendOSKeyring is one append to a keyed log with the OS keyring
// (run under scripts/with-keyring.sh): the key read, the log's record read
// and written, the line and the head synced.
func BenchmarkAppendOSKeyring(b *testing.B) {
	keys := secret.NewKeyring(0)
	if err := secret.Probe(keys); err != nil {
		b.Skip("no Secret Service keyring answers: run under scripts/with-keyring.sh: ", err)
	}
	l := OpenKeyed(b.TempDir(), keys, nil)
	b.Cleanup(func() { keys.Delete(l.keyName()); keys.Delete(l.recordName()) })
	e := Entry{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Event: EventDeployed, Old: ref.Key{ID: "key_1", Prefix: "pa_live_AAAAAAAA"}}
	for b.Loop() {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
}
