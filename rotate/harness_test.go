package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/target"
)

// world is the rotatetest world, with the rotator its tests use and a
// recorder that follows the gate.
type world struct {
	*rotatetest.World
	rep *recorder
}

func newWorld(t *testing.T) *world { t.Helper(); return newWorldConfig(t, emulator.Config{}) }

// newWorldConfig is newWorld with an emulator configured by cfg.
func newWorldConfig(t *testing.T, cfg emulator.Config) *world {
	t.Helper()
	return &world{World: rotatetest.NewConfig(t, cfg), rep: &recorder{}}
}

func (w *world) rotator() *Rotator {
	return &Rotator{
		API: w.API,
		ClientFor: func(keys ...string) (*client.Client, error) {
			return w.ClientFor("plana-test", keys...), nil
		},
		Secrets: w.Store, StateDir: w.StateDir, Reporter: w.rep, LocalActor: "tester@box",
		// One machine per world: no other create can be in flight.
		SettleDelay: time.Millisecond,
	}
}

// automation runs the seed's fallback pattern against the env file until
// stopped: PLANA_KEY_NEW first, PLANA_KEY as fallback. It returns how many
// calls failed.
func (w *world) automation(t *testing.T) (stop func() (calls, failed int64)) {
	var n, bad atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			data, err := os.ReadFile(w.EnvPath)
			if err != nil {
				bad.Add(1)
				continue
			}
			var keys []string
			for _, name := range []string{target.NewKeySlot, target.KeySlot} {
				if v, ok := target.LookupEnv(data, name); ok {
					keys = append(keys, v)
				}
			}
			n.Add(1)
			if err := w.Call("stock-sync/1.4", keys...); err != nil {
				bad.Add(1)
			}
			time.Sleep(2 * time.Millisecond) // the automation's own pace, not a wait for state
		}
	}()
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return n.Load(), bad.Load()
	}
}

// successors are the keys named like a successor of the old key.
func (w *world) successors(status string) []client.APIKey {
	var out []client.APIKey
	for _, k := range w.Keys(status) {
		if k.ID != w.Old.ID && lineage.IsSuccessorName(w.Old.Name, k.Name) {
			out = append(out, k)
		}
	}
	return out
}

// assertNoPlaintext greps every file of the state directory for key material.
func (w *world) assertNoPlaintext() {
	w.T.Helper()
	filepath.Walk(w.StateDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if loc := rotatetest.KeyShape.FindIndex(data); loc != nil {
			w.T.Errorf("%s holds something shaped like a plaintext key at byte %d", p, loc[0])
		}
		return nil
	})
}

// recorder is the world's Reporter, and a GateWatcher: each evaluation of
// the gate while step 3 waits is counted and runs OnWait.
type recorder struct{ rotatetest.Recorder }

func (r *recorder) GateChecked(gate.Report) { r.Checked() }

// atGate starts the automation and a rotation, and returns once the first
// run (steps 1 and 2) stopped at the gate and the automation took the new
// key; opts are that run's, stop ends the automation.
func (w *world) atGate(t *testing.T) (res *Result, opts Options, stop func() (calls, failed int64)) {
	t.Helper()
	stop = w.automation(t)
	rotatetest.Eventually(t, "the automation to use the old key", func() bool { return w.Key(w.Old.ID).LastUsedAt != nil })
	opts = fastOpts(w)
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		stop()
		t.Fatalf("first run: want pending at the gate, got %v", err)
	}
	rotatetest.Eventually(t, "the automation to move to the new key", func() bool { return w.Key(res.New.ID).LastUsedAt != nil })
	return res, opts, stop
}
