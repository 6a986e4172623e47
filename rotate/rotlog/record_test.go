package rotlog

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/plana-cli/plana/internal/secret"
)

// save copies the log and its head as they are, for putting back later.
func save(t *testing.T, l Log) (log, head []byte) {
	t.Helper()
	log, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	head, err = os.ReadFile(l.HeadPath())
	if err != nil {
		t.Fatal(err)
	}
	return log, head
}

func putBack(t *testing.T, l Log, log, head []byte) {
	t.Helper()
	if err := os.WriteFile(l.Path, log, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.HeadPath(), head, 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantChainError(t *testing.T, l Log, why string) {
	t.Helper()
	var ce *ChainError
	if _, err := l.Check(); !errors.As(err, &ce) || !strings.Contains(err.Error(), why) {
		t.Fatalf("want a ChainError saying %q, got %v", why, err)
	}
}

// Someone who can write the state directory but not read the keyring cuts
// the log's last entries, or puts an older copy back with its head: the
// chain still holds, and the head file alone would agree. The keyed head
// and the keyring's record of the log do not.
func TestCutOrRolledBackLogIsReported(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, l Log, older, olderHead []byte)
		why  string
	}{
		{"last entry cut, head rewritten to match", func(t *testing.T, l Log, _, _ []byte) {
			es := readLog(t, l)
			writeLines(t, l, es[:len(es)-1]) // the head, unkeyed, names the new last line
		}, "the head file naming it is not keyed"},
		{"last entry cut, head removed", func(t *testing.T, l Log, _, _ []byte) {
			es := readLog(t, l)
			writeLines(t, l, es[:len(es)-1])
			os.Remove(l.HeadPath())
		}, "is missing: the log ends after 4 entries, but this machine's keyring records 5 were written"},
		{"last entry cut, head given a made-up MAC", func(t *testing.T, l Log, _, _ []byte) {
			es := readLog(t, l)
			writeLines(t, l, es[:len(es)-1])
			h := logHead{Entries: 4, Hash: es[3].Hash, MAC: strings.Repeat("ab", 32)}
			if err := l.writeHead(h); err != nil {
				t.Fatal(err)
			}
		}, "the head file was rewritten without the log's key"},
		{"an older log put back with its head", func(t *testing.T, l Log, older, olderHead []byte) {
			putBack(t, l, older, olderHead)
		}, "is missing: the log ends after 3 entries, but this machine's keyring records 5 were written"},
		{"the log and its head deleted", func(t *testing.T, l Log, _, _ []byte) {
			os.Remove(l.Path)
			os.Remove(l.HeadPath())
		}, "is missing with its head: this machine's keyring records 5 entries were written"},
		{"an earlier log of this directory put in its place", func(t *testing.T, l Log, _, _ []byte) {
			// Moved aside whole, a new log begun, then the earlier one,
			// keyed with the same key, put back over it.
			log, head := save(t, l)
			for _, p := range []string{l.Path, l.HeadPath()} {
				if err := os.Rename(p, p+".old"); err != nil {
					t.Fatal(err)
				}
			}
			appendEntries(t, l, EventAborted)
			putBack(t, l, log, head)
		}, "is not the first entry of the log this machine's keyring records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := OpenKeyed(t.TempDir(), secret.NewMemory(), nil)
			appendEntries(t, l, EventCreated, EventDeployed, EventVerified)
			older, olderHead := save(t, l)
			appendEntries(t, l, EventRevoked, EventRotated)
			if err := l.Verify(); err != nil {
				t.Fatal(err)
			}
			tt.do(t, l, older, olderHead)
			wantChainError(t, l, tt.why)
			// The next append still records its entry, and leaves the
			// keyring's record as the evidence: still reported.
			var warned []string
			l.Warn = func(s string) { warned = append(warned, s) }
			if tt.name == "the log and its head deleted" {
				return // a new log begins: TestANewLogAfterOneLostSaysSo
			}
			n := len(readLog(t, l))
			appendEntries(t, l, EventCreated)
			if got := len(readLog(t, l)); got != n+1 {
				t.Fatalf("the append after the cut wrote %d lines", got-n)
			}
			if len(warned) != 1 || !strings.Contains(warned[0], "does not hold what this machine's keyring records") {
				t.Errorf("the append did not warn of the cut: %q", warned)
			}
			if _, err := l.Check(); err == nil {
				t.Error("after one more append, the cut passes")
			}
		})
	}
}

// The log moved aside whole (as ChainError advises) lets a new log begin
// quietly; a log lost or cut before it was moved makes the new log begin
// with a keyed line that says what was lost.
func TestANewLogAfterOneLostSaysSo(t *testing.T) {
	for _, whole := range []bool{true, false} {
		t.Run("moved aside whole "+strconv.FormatBool(whole), func(t *testing.T) {
			l := OpenKeyed(t.TempDir(), secret.NewMemory(), nil)
			appendEntries(t, l, EventCreated, EventDeployed, EventVerified)
			if !whole {
				es := readLog(t, l)
				writeLines(t, l, es[:2])
			}
			for _, p := range []string{l.Path, l.HeadPath()} {
				if err := os.Rename(p, p+".damaged"); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Verify(); whole != (err == nil) {
				t.Fatalf("moved aside (whole %v): %v", whole, err)
			}
			appendEntries(t, l, EventCreated)
			c, err := l.Check()
			if err != nil {
				t.Fatalf("the new log: %v", err)
			}
			if whole && (len(c.Entries) != 1 || len(c.Restarted) != 0) {
				t.Errorf("a log moved aside whole: want the new log to hold the one entry, got %+v", c.Entries)
			}
			if !whole && (len(c.Entries) != 2 || len(c.Restarted) != 1 || c.Entries[0].Event != EventRestarted ||
				c.Entries[0].Chain != ChainKeyed || !strings.Contains(c.Entries[0].Reason, "(3 entries")) {
				t.Errorf("a log lost: want the new log to begin with a keyed line saying what was lost, got %+v", c.Entries)
			}
		})
	}
}

// Two state directories (two profiles' scripts, two test runs) share one
// keyring: each log has its own key and its own record, and neither trips
// the other.
func TestTwoStateDirectoriesShareOneKeyring(t *testing.T) {
	keys := secret.NewMemory()
	a := OpenKeyed(filepath.Join(t.TempDir(), "a"), keys, func(s string) { t.Errorf("a: %s", s) })
	b := OpenKeyed(filepath.Join(t.TempDir(), "b"), keys, func(s string) { t.Errorf("b: %s", s) })
	for i := range 3 {
		appendEntries(t, a, EventCreated)
		if i < 2 {
			appendEntries(t, b, EventCreated)
		}
	}
	if a.recordName() == b.recordName() || a.keyName() == b.keyName() {
		t.Fatal("two logs share a keyring entry")
	}
	for _, l := range []Log{a, b} {
		if err := l.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	es := readLog(t, a)
	writeLines(t, a, es[:2])
	os.Remove(a.HeadPath())
	wantChainError(t, a, "keyring records 3 were written")
	appendEntries(t, b, EventDeployed)
	if err := b.Verify(); err != nil {
		t.Errorf("b, beside a cut a: %v", err)
	}
}

// With no session bus (cron, ssh), the OS keyring is known absent at once:
// every record is still appended, unkeyed, and Check says it cannot
// verify them here rather than failing.
func TestNoSessionBusNeverDropsARecord(t *testing.T) {
	if _, err := os.Stat(filepath.Join("/run/user", strconv.Itoa(os.Getuid()), "bus")); err == nil {
		t.Skip("this user has a session bus at /run/user/UID/bus, which plana finds without the environment")
	}
	dir := t.TempDir()
	keyed := OpenKeyed(dir, secret.NewMemory(), nil)
	appendEntries(t, keyed, EventCreated)

	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	var warned []string
	cron := OpenKeyed(dir, secret.NewKeyring(0), func(s string) { warned = append(warned, s) })
	appendEntries(t, cron, EventDeployed, EventVerified)
	es := readLog(t, cron)
	if len(es) != 3 || es[1].Chain != ChainUnkeyed || es[2].Chain != ChainUnkeyed {
		t.Fatalf("want both records appended unkeyed, got %+v", es)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "no D-Bus session bus") {
		t.Errorf("want one warning naming the missing bus, got %q", warned)
	}
	c, err := cron.Check()
	if err != nil || len(c.Entries) != 3 || c.Unverified != 3 || !strings.Contains(c.Why, "no D-Bus session bus") {
		t.Errorf("check with no session bus: %v, %d entries, %d unverified, why %q", err, len(c.Entries), c.Unverified, c.Why)
	}
}
