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
)

// mintOld gives the world another old key, named name, as its key to rotate.
func (w *world) mintOld(name string) {
	w.t.Helper()
	users, err := w.api.Me(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	plain, k, err := w.srv.MintKey(context.Background(), users.User.ID, name, []string{"stock:read"}, w.srv.Now().Add(-400*24*time.Hour))
	if err != nil {
		w.t.Fatal(err)
	}
	w.old, w.oldPlain = k, plain
}

// A name whose successor's name the server would refuse is refused before
// step 1: nothing created, no journal, and no advice to run it again as is.
func TestSuccessorNameTooLongRefusedBeforeStep1(t *testing.T) {
	w := newWorld(t)
	w.mintOld(strings.Repeat("n", 195))
	before := len(w.keys(client.StatusAll))
	_, err := w.rotator().Rotate(context.Background(), w.old, fastOpts(w))
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "Rename") || strings.Contains(err.Error(), "recovered") {
		t.Fatalf("want a usage error telling to rename the key, got %v", err)
	}
	if n := len(w.keys(client.StatusAll)); n != before {
		t.Errorf("%d keys were created", n-before)
	}
	if j, _ := w.rotator().journals().load(w.old.ID); j != nil {
		t.Errorf("a journal was left behind at step %q", j.Step)
	}
}

// A pending create the server refuses for good (a journal of an older plana
// holding a name too long) is cleared: the next run starts afresh and
// finishes step 1, instead of failing the same way forever.
func TestPermanentCreateRefusalClearsPending(t *testing.T) {
	w := newWorld(t)
	r := w.rotator()
	now := w.srv.Now()
	j := &Journal{Old: RefOf(w.old), Reason: ReasonScheduled, StartedAt: now, UpdatedAt: now,
		Pending: &PendingCreate{IdempotencyKey: client.NewIdempotencyKey(), Name: strings.Repeat("x", 201), Scopes: w.old.Scopes, At: now}}
	j.advance(StepStarted, now)
	if err := r.journals().save(j); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.NoWait = true
	_, err := r.Rotate(context.Background(), w.old, opts)
	if err == nil || strings.Contains(err.Error(), "run the same command again") || !strings.Contains(err.Error(), "nothing is left pending") {
		t.Fatalf("want the refusal, without advice to rerun, got %v", err)
	}
	if _, err := os.Stat(r.journals().path(w.old.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused create's journal is still there: %v", err)
	}
	res, err := w.rotator().Rotate(context.Background(), w.old, opts)
	if !errors.Is(err, ErrPending) || res == nil || res.New == nil {
		t.Fatalf("the next run did not start afresh: %v", err)
	}
}

// --issued-by with one env file or stdout for every successor is refused
// before anything is done: each successor would overwrite the last.
func TestIssuedByRefusesOneSharedTarget(t *testing.T) {
	for _, target := range []string{"env-file:ENV", "stdout"} {
		t.Run(target, func(t *testing.T) {
			w := newWorld(t)
			w.mintOld("Second sync (2025)")
			before := len(w.keys(client.StatusAll))
			opts := fastOpts(w)
			opts.Target, opts.NoWait = strings.Replace(target, "ENV", w.envPath, 1), true
			_, err := w.rotator().RotateIssuedBy(context.Background(), "ana@example.com", opts)
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "rotation.targets") {
				t.Fatalf("want a usage error pointing at rotation.targets, got %v", err)
			}
			if n := len(w.keys(client.StatusAll)); n != before {
				t.Errorf("%d keys were created", n-before)
			}
			if !w.key(w.old.ID).Active() {
				t.Error("a key was revoked")
			}
		})
	}
}

// A relative env-file target is recorded as an absolute path; a later run
// whose relative --to resolves elsewhere (cron starts in $HOME) is refused,
// naming both files, and the other file is left as it was.
func TestRelativeEnvFileTargetIsPinned(t *testing.T) {
	w := newWorld(t)
	dirA, dirB := filepath.Dir(w.envPath), t.TempDir()
	other := filepath.Join(dirB, "app.env")
	unrelated := []byte("PLANA_KEY=unrelated\n")
	if err := os.WriteFile(other, unrelated, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.Target, opts.NoWait = "env-file:app.env", true
	t.Chdir(dirA)
	if _, err := w.rotator().Rotate(context.Background(), w.old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("first run: %v", err)
	}
	j, err := w.rotator().journals().load(w.old.ID)
	if err != nil || j.Target != "env-file:"+w.envPath {
		t.Fatalf("the journal records %q, want the absolute env-file:%s (%v)", j.Target, w.envPath, err)
	}
	t.Chdir(dirB)
	_, err = w.rotator().Rotate(context.Background(), w.old, opts)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), w.envPath) || !strings.Contains(err.Error(), other) {
		t.Fatalf("want a usage error naming %s and %s, got %v", w.envPath, other, err)
	}
	if data, _ := os.ReadFile(other); string(data) != string(unrelated) {
		t.Errorf("the unrelated env file was changed:\n%s", data)
	}
	// Without --to, the rotation keeps its recorded target from anywhere.
	opts.Target = ""
	if _, err := w.rotator().Rotate(context.Background(), w.old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("a run without --to: %v", err)
	}
}

// rotateFully runs a whole planned rotation of the world's old key, the
// automation having moved to the new key, and returns its result.
func (w *world) rotateFully(opts Options) *Result {
	w.t.Helper()
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		w.t.Fatalf("first run: %v", err)
	}
	newPlain, err := w.store.Get(secret.KeyName(res.New.ID))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.call("stock-sync/1.4", newPlain); err != nil {
		w.t.Fatal(err)
	}
	w.srv.Advance(2 * opts.QuietPeriod)
	opts.NoWait, opts.Yes = false, true
	if res, err = w.rotator().Rotate(context.Background(), w.old, opts); err != nil || !res.Done {
		w.t.Fatalf("second run: %v\n%s", err, w.rep.text())
	}
	return res
}

// The same command after the rotation finished (the daily cron line) is
// done, not an error: it says when and to which key, and changes nothing.
func TestRotateAfterFinishIsDone(t *testing.T) {
	w := newWorld(t)
	done := w.rotateFully(fastOpts(w))
	keys := len(w.keys(client.StatusAll))
	old := w.key(w.old.ID)
	for _, from := range []string{"journal", "log"} {
		if from == "log" {
			// Without the finished journal the log still names the successor.
			os.RemoveAll(filepath.Join(RotationsDir(w.stateDir), "done"))
		}
		res, err := w.rotator().Rotate(context.Background(), old, fastOpts(w))
		if err != nil {
			t.Fatalf("from the %s: the same command again: %v", from, err)
		}
		if !res.AlreadyRotated || !res.Done || res.New == nil || res.New.ID != done.New.ID || res.FinishedAt.IsZero() {
			t.Fatalf("from the %s: want the finished rotation to %s, got %+v", from, done.New.Prefix, res)
		}
	}
	if n := len(w.keys(client.StatusAll)); n != keys {
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
		first, err := w.rotator().Rotate(context.Background(), w.old, opts)
		if !errors.Is(err, ErrPending) {
			t.Fatal(err)
		}
		opts.Force, opts.Yes = true, true
		res, err := w.rotator().Revoke(context.Background(), w.old, opts)
		if err != nil || !res.Done {
			t.Fatalf("forced revoke: %v", err)
		}
		data, _ := os.ReadFile(w.envPath)
		newPlain, _ := w.store.Get(secret.KeyName(first.New.ID))
		if v, _ := LookupEnv(data, EnvKey); v != newPlain {
			t.Error("PLANA_KEY does not hold the new key after the forced revoke")
		}
		if _, ok := LookupEnv(data, EnvKeyNew); ok {
			t.Error("PLANA_KEY_NEW is still there")
		}
	})
	t.Run("cannot finalize", func(t *testing.T) {
		w := newWorld(t)
		opts := fastOpts(w)
		opts.NoWait = true
		if _, err := w.rotator().Rotate(context.Background(), w.old, opts); !errors.Is(err, ErrPending) {
			t.Fatal(err)
		}
		deployed, _ := os.ReadFile(w.envPath)
		os.Remove(w.envPath)
		opts.Force, opts.Yes = true, true
		res, err := w.rotator().Revoke(context.Background(), w.old, opts)
		if !errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "deploy "+w.old.ID+" --finalize") {
			t.Fatalf("want the rotation left open, saying to run deploy --finalize, got %v", err)
		}
		if w.key(w.old.ID).Active() || res.Done {
			t.Fatalf("the old key must be revoked (forced) and the rotation open: done %v", res.Done)
		}
		os.WriteFile(w.envPath, deployed, 0o600)
		opts = fastOpts(w)
		opts.Finalize = true
		opts.Target = ""
		if _, err := w.rotator().Deploy(context.Background(), w.old, opts); err != nil {
			t.Fatalf("deploy --finalize after the forced revoke: %v", err)
		}
		newPlain, _ := w.store.Get(secret.KeyName(res.New.ID))
		if err := w.call("stock-sync/1.4", newPlain); err != nil {
			t.Fatal(err)
		}
		opts.Finalize, opts.Yes = false, true
		if res, err = w.rotator().Rotate(context.Background(), w.old, opts); err != nil || !res.Done {
			t.Fatalf("closing the rotation: %v\n%s", err, w.rep.text())
		}
	})
}

// After an emergency the words say what happened: the old key was revoked,
// not quiet for a quiet period, and no quiet period is suggested for it.
func TestEmergencyWordsSayWhatHappened(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	opts.QuietPeriod, opts.Emergency, opts.NoWait = 0, ReasonCompromise, true
	res, err := w.rotator().Rotate(context.Background(), w.old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		t.Fatalf("first run: %v", err)
	}
	newPlain, _ := w.store.Get(secret.KeyName(res.New.ID))
	if err := w.call("stock-sync/1.4", newPlain); err != nil {
		t.Fatal(err)
	}
	if res, err = w.rotator().Rotate(context.Background(), w.old, opts); err != nil || !res.Done {
		t.Fatalf("second run: %v", err)
	}
	text := w.rep.text()
	for _, wrong := range []string{"has been quiet for", "twice the longest gap", "no quiet period configured"} {
		if strings.Contains(text, wrong) {
			t.Errorf("an emergency's output says %q:\n%s", wrong, text)
		}
	}
	if !strings.Contains(text, "was revoked") {
		t.Errorf("an emergency's output does not say the old key was revoked:\n%s", text)
	}
}

// The default quiet period, with no history to read, is called that.
func TestDefaultQuietPeriodIsCalledTheDefault(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, calls := range [][]time.Time{nil, {t0}} {
		q, why := suggestQuiet(calls)
		if q != defaultQuiet || strings.Contains(why, "twice") || !strings.Contains(why, "default") {
			t.Errorf("%d calls: %s, %q", len(calls), q, why)
		}
	}
	if q, why := suggestQuiet([]time.Time{t0, t0.Add(24 * time.Hour)}); q != 48*time.Hour || !strings.Contains(why, "twice the longest gap") || !strings.Contains(why, "24h") {
		t.Errorf("a daily job: %s, %q", q, why)
	}
}
