package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/target"
)

// mintOld gives the world another old key, named name, as its key to rotate.
func (w *world) mintOld(name string) {
	w.T.Helper()
	users, err := w.API.Me(context.Background())
	if err != nil {
		w.T.Fatal(err)
	}
	plain, k, err := w.Srv.MintKey(context.Background(), users.User.ID, name, []string{"stock:read"}, w.Srv.Now().Add(-400*24*time.Hour))
	if err != nil {
		w.T.Fatal(err)
	}
	w.Old, w.OldPlain = k, plain
	// The env file is this key's: a file holding another key is refused.
	if err := os.WriteFile(w.EnvPath, []byte("PLANA_KEY="+plain+"\n"), 0o600); err != nil {
		w.T.Fatal(err)
	}
}

// A name whose successor's name the server would refuse is refused before
// step 1: nothing created, no journal, and no advice to run it again as is.
func TestSuccessorNameTooLongRefusedBeforeStep1(t *testing.T) {
	w := newWorld(t)
	w.mintOld(strings.Repeat("n", 195))
	before := len(w.Keys(client.StatusAll))
	_, err := w.rotator().Rotate(context.Background(), w.Old, fastOpts(w))
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "Rename") || strings.Contains(err.Error(), "recovered") {
		t.Fatalf("want a usage error telling to rename the key, got %v", err)
	}
	if n := len(w.Keys(client.StatusAll)); n != before {
		t.Errorf("%d keys were created", n-before)
	}
	if j, _ := w.rotator().journals().load(w.Old.ID); j != nil {
		t.Errorf("a journal was left behind at step %q", j.State)
	}
}

// A pending create the server refuses for good (a journal of an older plana
// holding a name too long) is cleared: the next run starts afresh and
// finishes step 1, instead of failing the same way forever.
func TestPermanentCreateRefusalClearsPending(t *testing.T) {
	w := newWorld(t)
	r := w.rotator()
	now := w.Srv.Now()
	j := &Journal{Old: ref.Of(w.Old), Reason: ReasonScheduled, StartedAt: now, UpdatedAt: now,
		Pending: &PendingCreate{IdempotencyKey: client.NewIdempotencyKey(), Name: strings.Repeat("x", 201), Scopes: w.Old.Scopes, At: now}}
	j.advance(Started, now)
	if err := r.journals().save(j); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.NoWait = true
	_, err := r.Rotate(context.Background(), w.Old, opts)
	if err == nil || strings.Contains(err.Error(), "run the same command again") || !strings.Contains(err.Error(), "nothing is left pending") {
		t.Fatalf("want the refusal, without advice to rerun, got %v", err)
	}
	if _, err := os.Stat(r.journals().path(w.Old.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused create's journal is still there: %v", err)
	}
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res == nil || res.New == nil {
		t.Fatalf("the next run did not start afresh: %v", err)
	}
}

// A relative env-file target is recorded as an absolute path; a later run
// whose relative --to resolves elsewhere (cron starts in $HOME) is refused,
// naming both files, and the other file is left as it was.
func TestRelativeEnvFileTargetIsPinned(t *testing.T) {
	w := newWorld(t)
	dirA, dirB := filepath.Dir(w.EnvPath), t.TempDir()
	other := filepath.Join(dirB, "app.env")
	unrelated := []byte("PLANA_KEY=unrelated\n")
	if err := os.WriteFile(other, unrelated, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.Targets, opts.NoWait = []string{"env-file:app.env"}, true
	t.Chdir(dirA)
	if _, err := w.rotator().Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("first run: %v", err)
	}
	j, err := w.rotator().journals().load(w.Old.ID)
	if err != nil || len(j.Targets) != 1 || j.Targets[0].Target != "env-file:"+w.EnvPath {
		t.Fatalf("the journal records %+v, want the absolute env-file:%s (%v)", j.Targets, w.EnvPath, err)
	}
	t.Chdir(dirB)
	_, err = w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), w.EnvPath) || !strings.Contains(err.Error(), other) {
		t.Fatalf("want a usage error naming %s and %s, got %v", w.EnvPath, other, err)
	}
	if data, _ := os.ReadFile(other); string(data) != string(unrelated) {
		t.Errorf("the unrelated env file was changed:\n%s", data)
	}
	// Without --to, the rotation keeps its recorded target from anywhere.
	opts.Targets = nil
	if _, err := w.rotator().Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("a run without --to: %v", err)
	}
}

// rotateFully runs a whole planned rotation of the world's old key, the
// automation having moved to the new key, and returns its result.
func (w *world) rotateFully(opts Options) *Result {
	w.T.Helper()
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		w.T.Fatalf("first run: %v", err)
	}
	newPlain, err := w.Store.Get(secret.KeyName(res.New.ID))
	if err != nil {
		w.T.Fatal(err)
	}
	if err := w.Call("stock-sync/1.4", newPlain); err != nil {
		w.T.Fatal(err)
	}
	w.Srv.Advance(2 * opts.QuietPeriod)
	opts.NoWait, opts.Yes = false, true
	if res, err = w.rotator().Rotate(context.Background(), w.Old, opts); err != nil || !res.Done {
		w.T.Fatalf("second run: %v\n%s", err, w.rep.Text())
	}
	return res
}

// The same command after the rotation finished (the daily cron line) is
// done, not an error: it says when and to which key, and changes nothing.
func TestRotateAfterFinishIsDone(t *testing.T) {
	w := newWorld(t)
	done := w.rotateFully(fastOpts(w))
	keys := len(w.Keys(client.StatusAll))
	old := w.Key(w.Old.ID)
	for _, from := range []string{"journal", "log"} {
		if from == "log" {
			// Without the finished journal the log still names the successor.
			os.RemoveAll(filepath.Join(RotationsDir(w.StateDir), "done"))
		}
		res, err := w.rotator().Rotate(context.Background(), old, fastOpts(w))
		if err != nil {
			t.Fatalf("from the %s: the same command again: %v", from, err)
		}
		if !res.AlreadyRotated || !res.Done || res.New == nil || res.New.ID != done.New.ID || res.FinishedAt.IsZero() {
			t.Fatalf("from the %s: want the finished rotation to %s, got %+v", from, done.New.Prefix, res)
		}
	}
	if n := len(w.Keys(client.StatusAll)); n != keys {
		t.Errorf("%d keys were created", n-keys)
	}
}

// A forced revoke before step 4 finalizes the env file first, so the
// revoked key is not left in PLANA_KEY; where it cannot, the old key is
// revoked and the rotation stays open at its step, so deploy --finalize
// still works and the rotation can end.
func TestForcedRevokeBeforeStep4(t *testing.T) {
	t.Run("finalizes first", func(t *testing.T) {
		w := newWorld(t)
		opts := fastOpts(w)
		opts.NoWait = true
		first, err := w.rotator().Rotate(context.Background(), w.Old, opts)
		if !errors.Is(err, ErrPending) {
			t.Fatal(err)
		}
		opts.Force, opts.Yes = true, true
		res, err := w.rotator().Revoke(context.Background(), w.Old, opts)
		if err != nil || !res.Done {
			t.Fatalf("forced revoke: %v", err)
		}
		data, _ := os.ReadFile(w.EnvPath)
		newPlain, _ := w.Store.Get(secret.KeyName(first.New.ID))
		if v, _ := target.LookupEnv(data, target.KeySlot); v != newPlain {
			t.Error("PLANA_KEY does not hold the new key after the forced revoke")
		}
		if _, ok := target.LookupEnv(data, target.NewKeySlot); ok {
			t.Error("PLANA_KEY_NEW is still there")
		}
	})
	t.Run("cannot finalize", func(t *testing.T) {
		w := newWorld(t)
		opts := fastOpts(w)
		opts.NoWait = true
		if _, err := w.rotator().Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) {
			t.Fatal(err)
		}
		deployed, _ := os.ReadFile(w.EnvPath)
		os.Remove(w.EnvPath)
		opts.Force, opts.Yes = true, true
		res, err := w.rotator().Revoke(context.Background(), w.Old, opts)
		if !errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "deploy "+w.Old.ID+" --finalize") {
			t.Fatalf("want the rotation left open, saying to run deploy --finalize, got %v", err)
		}
		if w.Key(w.Old.ID).Active() || res.Done {
			t.Fatalf("the old key must be revoked (forced) and the rotation open: done %v", res.Done)
		}
		os.WriteFile(w.EnvPath, deployed, 0o600)
		opts = fastOpts(w)
		opts.Finalize = true
		opts.Targets = nil
		if _, err := w.rotator().Deploy(context.Background(), w.Old, opts); err != nil {
			t.Fatalf("deploy --finalize after the forced revoke: %v", err)
		}
		newPlain, _ := w.Store.Get(secret.KeyName(res.New.ID))
		if err := w.Call("stock-sync/1.4", newPlain); err != nil {
			t.Fatal(err)
		}
		opts.Finalize, opts.Yes = false, true
		if res, err = w.rotator().Rotate(context.Background(), w.Old, opts); err != nil || !res.Done {
			t.Fatalf("closing the rotation: %v\n%s", err, w.rep.Text())
		}
	})
}

// After an emergency the words say what happened: the old key was revoked,
// not quiet for a quiet period, and no quiet period is suggested for it.
func TestEmergencyWordsSayWhatHappened(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	opts.QuietPeriod, opts.Emergency, opts.NoWait = 0, ReasonCompromise, true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		t.Fatalf("first run: %v", err)
	}
	newPlain, _ := w.Store.Get(secret.KeyName(res.New.ID))
	if err := w.Call("stock-sync/1.4", newPlain); err != nil {
		t.Fatal(err)
	}
	if res, err = w.rotator().Rotate(context.Background(), w.Old, opts); err != nil || !res.Done {
		t.Fatalf("second run: %v", err)
	}
	text := w.rep.Text()
	for _, wrong := range []string{"has been quiet for", "twice the longest gap", "no quiet period configured"} {
		if strings.Contains(text, wrong) {
			t.Errorf("an emergency's output says %q:\n%s", wrong, text)
		}
	}
	if !strings.Contains(text, "was revoked") {
		t.Errorf("an emergency's output does not say the old key was revoked:\n%s", text)
	}
}
