package rotlog

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/rotate/ref"
)

func TestRotationLogChain(t *testing.T) {
	dir := t.TempDir()
	l := Open(dir)
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, ev := range []string{EventCreated, EventDeployed, EventRevoked, EventRotated} {
		if _, err := l.Append(Entry{Time: base.Add(time.Duration(i) * time.Minute), Event: ev, Old: ref.Key{ID: "key_1", Prefix: "pa_live_AAAAAAAA"},
			New: &ref.Key{ID: "key_2"}, Reason: "scheduled", Actor: ref.Actor{Email: "ana@example.com", Local: "ana@box"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(l.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v", fi.Mode().Perm())
	}
	orig, _ := os.ReadFile(l.Path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(orig), "\n"), "\n")
	tamper := map[string]string{
		"edited":   strings.Replace(string(orig), "ana@example.com", "eve@example.com", 1),
		"deleted":  lines[0] + strings.Join(lines[2:], ""),
		"inserted": lines[0] + lines[1] + lines[1] + strings.Join(lines[2:], ""),
		"swapped":  lines[1] + lines[0] + strings.Join(lines[2:], ""),
		// The chain alone holds after these; the head file catches them.
		"last deleted": strings.Join(lines[:3], ""),
		"emptied":      "",
	}
	for name, data := range tamper {
		os.WriteFile(l.Path, []byte(data), 0o600)
		var ce *ChainError
		if err := l.Verify(); !errors.As(err, &ce) {
			t.Errorf("%s line not detected: %v", name, err)
		}
	}
	os.Remove(l.Path)
	if err := l.Verify(); err == nil {
		t.Error("a deleted log file not detected")
	}
	// A crash between the append and the head's update leaves one line the
	// head does not know yet: that is not tampering.
	os.WriteFile(l.Path, orig, 0o600)
	var e3 Entry
	json.Unmarshal([]byte(lines[2]), &e3)
	if err := l.writeHead(logHead{Entries: 3, Hash: e3.Hash}); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(); err != nil {
		t.Errorf("an append the head missed is reported: %v", err)
	}
}
