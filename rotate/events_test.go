package rotate

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
)

// hookEvents is a notifier whose one hook appends each event to a file,
// and a function that closes it and returns the events heard.
func hookEvents(t *testing.T) (*notify.Notifier, func() []map[string]any) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "events")
	n, err := notify.New([]string{"exec:cat >> " + out}, notify.Options{Warn: func(s string) { t.Error(s) }})
	if err != nil {
		t.Fatal(err)
	}
	return n, func() []map[string]any {
		n.Close(context.Background())
		data, _ := os.ReadFile(out)
		var es []map[string]any
		for line := range strings.Lines(string(data)) {
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			es = append(es, e)
		}
		return es
	}
}

func kinds(es []map[string]any) []string {
	var out []string
	for _, e := range es {
		out = append(out, e["event"].(string))
	}
	return out
}

// Ctrl-C tells the hooks the run was interrupted, at the step it stopped
// at, not that it failed: the next run resumes there.
func TestCtrlCTellsHooksInterrupted(t *testing.T) {
	t.Run("waiting on the gate", func(t *testing.T) {
		w := newWorld(t)
		n, heard := hookEvents(t)
		r := w.rotator()
		r.Notify = n
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w.rep.OnWait = cancel
		_, err := r.Rotate(ctx, w.Old, fastOpts(w))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want the run stopped by the cancel, got %v", err)
		}
		es := heard()
		got := kinds(es)
		if last := es[len(es)-1]; last["event"] != "interrupted" || last["step"] != "verify" || slices.Contains(got, "failed") {
			t.Errorf("events %v, last %v: want the wait to end interrupted at verify, nothing failed", got, last)
		}
	})
	t.Run("in an exec target", func(t *testing.T) {
		w := newWorld(t)
		n, heard := hookEvents(t)
		r := w.rotator()
		r.Notify = n
		started := filepath.Join(t.TempDir(), "started")
		opts := fastOpts(w)
		opts.Targets = []string{"exec:read k; touch " + started + "; sleep 30"}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if _, err := os.Stat(started); err == nil {
					cancel()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		_, err := r.Rotate(ctx, w.Old, opts)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want the run stopped by the cancel, got %v", err)
		}
		es := heard()
		got := kinds(es)
		if last := es[len(es)-1]; last["event"] != "interrupted" || last["step"] != "deploy" || slices.Contains(got, "failed") {
			t.Errorf("events %v, last %v: want the deploy interrupted, nothing failed", got, last)
		}
	})
}

// The sources a waiting event carries have the gate's shape in -o json:
// the same field names, path and calls among them.
func TestNotifySourcesHaveTheGatesSchema(t *testing.T) {
	w := newWorld(t)
	n, heard := hookEvents(t)
	r := w.rotator()
	r.Notify = n
	w.MustCall("legacy-cron/0.9", w.OldPlain)
	rotatetest.Eventually(t, "the old key to be seen used", func() bool { return w.Key(w.Old.ID).LastUsedAt != nil })
	opts := fastOpts(w)
	opts.NoWait = true
	if _, err := r.Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("want the gate pending: %v", err)
	}
	want := map[string]any{}
	b, _ := json.Marshal(gate.Source{})
	json.Unmarshal(b, &want)
	var waited int
	for _, e := range heard() {
		if e["event"] != "waiting" {
			continue
		}
		srcs, _ := e["sources"].([]any)
		for _, s := range srcs {
			waited++
			if got := s.(map[string]any); !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
				t.Errorf("a source of a waiting event has the fields %v, the gate's have %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
			}
		}
	}
	if waited == 0 {
		t.Fatal("no waiting event named a source")
	}
}
