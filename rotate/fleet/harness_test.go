package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
)

// world is the rotatetest world with the rotator a fleet's tests start
// from.
type world struct {
	*rotatetest.World
	rep *recorder
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return &world{World: rotatetest.New(t), rep: &recorder{}}
}

func (w *world) rotator() *rotate.Rotator {
	return &rotate.Rotator{
		API: w.API,
		ClientFor: func(keys ...string) (*client.Client, error) {
			return w.ClientFor("plana-test", keys...), nil
		},
		Secrets: w.Store, StateDir: w.StateDir, Reporter: w.rep, LocalActor: "tester@box",
		// One machine per world: no other create can be in flight.
		SettleDelay: time.Millisecond,
	}
}

// recorder follows the gate: each evaluation while step 3 waits is counted
// and runs OnWait.
type recorder struct{ rotatetest.Recorder }

func (r *recorder) GateChecked(gate.Report) { r.Checked() }

// pushClock moves the server's clock two hours on every wait, so an hour of
// quiet passes in a moment once the automation has left the old key.
func (w *world) pushClock() { w.rep.OnWait = func() { w.Srv.Advance(2 * time.Hour) } }

// mintOld gives the world another old key, named name, as its key to rotate.
func (w *world) mintOld(name string) {
	w.T.Helper()
	me, err := w.API.Me(context.Background())
	if err != nil {
		w.T.Fatal(err)
	}
	plain, k, err := w.Srv.MintKey(context.Background(), me.User.ID, name, []string{"stock:read"}, w.Srv.Now().Add(-400*24*time.Hour))
	if err != nil {
		w.T.Fatal(err)
	}
	w.Old, w.OldPlain = k, plain
}

// fastOpts are options for a rotation to the world's env file that waits
// no longer than a test may.
func fastOpts(w *world) rotate.Options {
	return rotate.Options{Targets: []string{"env-file:" + w.EnvPath}, QuietPeriod: time.Hour, PollInterval: 5 * time.Millisecond, Timeout: 20 * time.Second}
}
