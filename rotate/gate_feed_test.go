package rotate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/gate"
)

// Gates of rotations under way in one process read the execution log
// through one feed. A gate whose journal remembers the look-back (its
// first run's gate read it) needs only its quiet window: the first gate's
// first read starts there (the log, the keys); the second's brings its
// window in one read more, which newcomers arriving together would share.
// A poll of them all then costs the feed's requests, whatever their number.
func TestGatesShareTheFeed(t *testing.T) {
	const q = time.Hour
	w := newWorld(t)
	ctx := context.Background()
	second := w.Mint(t, 1)[0]
	startRotation(t, w, q) // the world's key: its new key already used
	if _, err := w.rotator().Rotate(ctx, second.Key, Options{QuietPeriod: q, NoWait: true, PollInterval: time.Millisecond}); !errors.Is(err, ErrPending) {
		t.Fatalf("want the second rotation waiting: %v", err)
	}
	api, n := w.Counting(t)
	if _, err := api.Me(ctx); err != nil { // the server's present, as a run has it
		t.Fatal(err)
	}
	feed := gate.NewFeed(api, time.Hour)
	// Run reads at once for each new subscriber, as in a fleet.
	runCtx, stopRun := context.WithCancel(ctx)
	var running sync.WaitGroup
	running.Add(1)
	go func() { defer running.Done(); feed.Run(runCtx) }()
	var gates []*gate.Gate
	for i, id := range []string{w.Old.ID, second.Key.ID} {
		j, err := w.rotator().journals().load(id)
		if err != nil || j == nil {
			t.Fatal(err)
		}
		c := j.gateConfig(q, true)
		c.Feed = feed
		g := gate.New(api, c)
		defer g.Close()
		n.Store(0)
		if _, err := g.Eval(ctx); err != nil {
			t.Fatal(err)
		}
		if j.Gate == nil {
			t.Fatalf("the journal of %s remembers nothing of its gate", id)
		}
		if got, want := n.Load(), int64(2+i); got != want {
			t.Errorf("gate %d's first read took %d requests, want %d", i+1, got, want)
		}
		gates = append(gates, g)
	}
	stopRun()
	running.Wait()
	// The second rotation's new key is used now; the first's old key too.
	j2, _ := w.rotator().journals().load(second.Key.ID)
	newPlain, err := w.Store.Get(secret.KeyName(j2.New.ID))
	if err != nil {
		t.Fatal(err)
	}
	w.MustCall("job/2", newPlain)
	w.MustCall("stock-sync/1.4", w.OldPlain)

	n.Store(0)
	feed.Read(ctx)
	var reps []gate.Report
	for _, g := range gates {
		rep, err := g.Eval(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, rep)
	}
	// The first gate saw its own hold at its first read: this is its second
	// look, which reads its old key's quiet window again on its own.
	if got := n.Load(); got != 3 {
		t.Errorf("one poll of two gates took %d requests, want the feed's 2 (the log, the keys) and the first gate's second look", got)
	}
	// The second key's old key was never called: its new key's first use
	// is all its gate waited for, seen by two looks.
	if !reps[1].NewUsed || !reps[1].Holds || reps[1].Passed {
		t.Errorf("the second gate's first look that holds: %+v", reps[1])
	}
	feed.Read(ctx)
	if rep, err := gates[1].Eval(ctx); err != nil || !rep.Passed {
		t.Errorf("the second gate's second look: %v %+v", err, rep)
	}
	if reps[0].OldQuiet || reps[0].OldLastUse.IsZero() {
		t.Errorf("the first gate missed its old key's call: %+v", reps[0])
	}
}
