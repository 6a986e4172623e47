package rotate

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

// A rotation lists the workspace's keys twice up to its gate: before step
// 1 (which also names the new key) and after the create (the race rule).
func TestRotationListsKeysTwice(t *testing.T) {
	w := newWorld(t)
	var listed atomic.Int32
	rot := w.rotator()
	rot.API = w.APIThrough(t, func(r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/api-keys" {
			listed.Add(1)
		}
	})
	opts := fastOpts(w)
	opts.NoWait = true
	if _, err := rot.Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("want pending at the gate: %v", err)
	}
	if n := listed.Load(); n != 2 {
		t.Errorf("%d listings up to the gate, want 2", n)
	}
}
