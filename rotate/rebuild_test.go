package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

func TestRebuildDamagedJournal(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	opts := fastOpts(w)
	opts.NoWait = true
	res, _ := w.rotator().Rotate(ctx, w.Old, opts)
	js := w.rotator().journals()
	os.WriteFile(js.path(w.Old.ID), []byte("\x00garbage"), 0o600)
	if _, err := w.rotator().Rotate(ctx, w.Old, opts); err == nil {
		t.Fatal("a damaged journal must stop the run")
	}
	rb, err := w.rotator().Rebuild(ctx, w.Old, opts)
	if err != nil || rb.New == nil || rb.New.ID != res.New.ID {
		t.Fatalf("rebuild: %v %+v", err, rb)
	}
	if _, err := os.Stat(js.path(w.Old.ID) + ".damaged"); err != nil {
		t.Error("the damaged journal must be kept aside")
	}
	newPlain, _ := w.Store.Get(secret.KeyName(res.New.ID))
	if err := w.Call("stock-sync/1.4", newPlain); err != nil {
		t.Fatal(err)
	}
	w.Srv.Advance(2 * time.Hour)
	opts.Yes = true
	if r, err := w.rotator().Rotate(ctx, w.Old, opts); err != nil || !r.Done {
		t.Fatalf("after rebuild: %v", err)
	}
	if n := len(w.successors(client.StatusAll)); n != 1 {
		t.Errorf("%d successors after a rebuild", n)
	}
}

// A rebuilt journal records every --to given, made absolute like a run's:
// the next run deploys and finalizes each of them.
func TestRebuildKeepsEveryTarget(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	opts := fastOpts(w)
	opts.NoWait = true
	if _, err := w.rotator().Rotate(ctx, w.Old, opts); !errors.Is(err, ErrPending) {
		t.Fatalf("want a rotation waiting: %v", err)
	}
	js := w.rotator().journals()
	os.WriteFile(js.path(w.Old.ID), []byte("\x00garbage"), 0o600)
	dir := t.TempDir()
	t.Chdir(dir)
	second := filepath.Join(dir, "us.env")
	opts.Targets = []string{"env-file:" + w.EnvPath, "env-file:us.env"}
	if _, err := w.rotator().Rebuild(ctx, w.Old, opts); err != nil {
		t.Fatal(err)
	}
	j, err := js.load(w.Old.ID)
	if err != nil || j == nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range j.Targets {
		got = append(got, st.Target)
	}
	if want := []string{"env-file:" + w.EnvPath, "env-file:" + second}; !slices.Equal(got, want) {
		t.Errorf("rebuilt journal's targets %q, want %q", got, want)
	}
}
