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
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/target"
)

// runner is an ephemeral machine: no keyring, and a state directory of
// its own that the next run does not see.
func (w *world) runner(name string) *Rotator {
	r := w.machine(name)
	r.Secrets = brokenKeyring{}
	return r
}

// A runner with no keyring and only targets that cannot give the key back
// but need it to finalize would leave a rotation no run could finish: it
// is refused before anything is created, saying what to add.
func TestKeylessRotationNoOtherRunCouldFinishIsRefused(t *testing.T) {
	w := newWorld(t)
	before := len(w.Keys(client.StatusAll))
	r := w.runner("ci-1")
	opts := fastOpts(w)
	opts.NoWait, opts.Yes = true, true
	opts.Targets = []string{"exec:cat > " + filepath.Join(t.TempDir(), "secret")}
	_, err := r.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("want a refusal (exit 2), got %v", err)
	}
	for _, want := range []string{"no working keyring here", opts.Targets[0], "Nothing was created", "k8s:NAMESPACE/NAME", "aws-sm:SECRET_ID", "exec-ab:CMD"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if after := len(w.Keys(client.StatusAll)); after != before {
		t.Fatal("a key was created")
	}
	if items, _ := Status(r.StateDir); len(items) != 0 {
		t.Fatalf("the refusal left %d rotations under way", len(items))
	}

	// Beside a target plana reads back, or alone when its finalize needs
	// no key, the same runner goes ahead.
	for _, beside := range []string{"env-file", "stdout"} {
		w := newWorld(t)
		o := fastOpts(w)
		targets := []string{"stdout"}
		if beside == "env-file" {
			targets = []string{opts.Targets[0], "env-file:" + w.EnvPath}
		}
		o.NoWait, o.Targets, o.SecretOut = true, targets, new(strings.Builder)
		if _, err := w.runner("ci-2").Rotate(context.Background(), w.Old, o); !errors.Is(err, ErrPending) {
			t.Fatalf("%v: want the rotation under way, got %v", targets, err)
		}
	}
}

// Fresh runners, each without a keyring or the last one's state, finish a
// rotation whose targets are a store that cannot be read back (exec:) and
// one that can (the env file): every run after the first reads the new key
// back from the readable one, checks its prefix, and the last finalizes
// both, the exec: target with the key read back. The automation never
// fails a call.
func TestFreshRunnersFinishThroughAReadableTarget(t *testing.T) {
	w := newWorld(t)
	stop := w.automation(t)
	rotatetest.Eventually(t, "the automation to use the old key", func() bool { return w.Key(w.Old.ID).LastUsedAt != nil })
	store := filepath.Join(t.TempDir(), "write-only")
	opts := fastOpts(w)
	opts.NoWait, opts.Yes = true, true
	opts.Targets = append(opts.Targets, `exec:cat > "`+store+`.$PLANA_STEP"`)

	res, err := w.runner("run1").Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil || res.State != Deployed {
		t.Fatalf("run 1: %v %+v", err, res)
	}
	if len(res.Targets) != 2 || !res.Targets[0].Readable || res.Targets[1].Readable {
		t.Fatalf("the journal must record which targets can be read back: %+v", res.Targets)
	}
	nw := *res.New
	rotatetest.Eventually(t, "the automation to move to the new key", func() bool { return w.Key(nw.ID).LastUsedAt != nil })
	if res, err = w.runner("run2").Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) || res.New.ID != nw.ID {
		t.Fatalf("run 2: %v", err)
	}
	w.Srv.Advance(2 * time.Hour)
	run3 := w.runner("run3")
	if res, err = run3.Rotate(context.Background(), w.Old, opts); err != nil || !res.Done {
		t.Fatalf("run 3: %v\n%s", err, run3.Reporter.(*recorder).Text())
	}
	if _, failed := stop(); failed != 0 {
		t.Fatalf("%d automation calls failed", failed)
	}
	got, err := os.ReadFile(store + ".finalize")
	if err != nil || client.PrefixOf(strings.TrimSpace(string(got))) != nw.Prefix {
		t.Fatal("the exec: target's finalize did not get the new key, read back from the env file")
	}
	if v := envValue(t, w.EnvPath, target.KeySlot); client.PrefixOf(v) != nw.Prefix {
		t.Fatal("the env file does not hold only the new key")
	}
	if n := len(w.successors(client.StatusAll)); n != 1 {
		t.Fatalf("%d successors, want 1", n)
	}
}

// A machine that cannot reach the plaintext says where it is. While the
// key is fresh its creator may still be deploying it: pending (exit 3).
// Later, running again cannot help: a failure (exit 1) that says whose
// keyring holds it.
func TestHeldElsewhereIsAFailureOnceItsCreatorIsDone(t *testing.T) {
	w := newWorld(t)
	a, b := w.rotator(), w.machine("b")
	a.MachineName = "build-7"
	created, err := a.Create(context.Background(), w.Old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.NoWait = true
	opts.Targets = []string{"exec:cat >/dev/null", "env-file:" + w.EnvPath}
	_, err = b.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "Run the same command again in a few minutes") {
		t.Fatalf("a fresh key: want pending, got %v", err)
	}
	w.Srv.Advance(time.Hour)
	_, err = b.Rotate(context.Background(), w.Old, opts)
	var held *HeldElsewhereError
	if !errors.As(err, &held) || errors.Is(err, ErrPending) {
		t.Fatalf("an hour later: want a failure, not pending, got %v", err)
	}
	for _, want := range []string{"this machine cannot finish the rotation of " + w.Old.Prefix, created.New.Prefix,
		"was created by ana@example.com", "its plaintext is only in the keyring of build-7, and in exec:cat >/dev/null, which plana cannot read back",
		"env-file:" + w.EnvPath + " does not hold it", "Waiting will not help", "--abort"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Fix the target") {
		t.Errorf("no target failed: %v", err)
	}
	if n := len(w.successors(client.StatusAll)); n != 1 {
		t.Fatalf("%d successors, want 1", n)
	}
}
