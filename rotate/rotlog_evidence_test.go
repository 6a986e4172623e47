package rotate

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/plana-cli/plana/rotate/rotlog"
)

// Deleting the log together with its head no longer passes as an empty
// log when the journals show rotations wrote to it.
func TestMissingLogDetectedFromJournals(t *testing.T) {
	w := newWorld(t)
	l := w.rotator().Log()
	if err := l.Verify(); err != nil {
		t.Fatalf("no rotation yet, no log: %v", err)
	}
	opts := fastOpts(w)
	opts.NoWait = true
	if _, err := w.rotator().Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("want the gate pending, got %v", err)
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{l.Path, l.HeadPath()} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	var ce *rotlog.ChainError
	if err := l.Verify(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "is missing with its head") || !strings.Contains(err.Error(), w.Old.Prefix) {
		t.Fatalf("want the missing log reported with the journal that shows it, got %v", err)
	}
}
