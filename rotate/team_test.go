package rotate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

// machine is another computer on the same workspace: its own state
// directory and its own keyring, the world's server and env-file target.
func (w *world) machine(name string) *Rotator {
	r := w.rotator()
	r.StateDir = filepath.Join(w.T.TempDir(), name)
	r.Secrets = secret.NewMemory()
	r.Reporter = &recorder{}
	r.LocalActor = "tester@" + name
	return r
}

func envValue(t *testing.T, path, name string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := target.LookupEnv(data, name)
	return v
}

func activeSuccessors(w *world) []client.APIKey {
	var out []client.APIKey
	succ, _ := lineage.Successors(w.Key(w.Old.ID), w.Keys(client.StatusAll), client.User{})
	for _, k := range succ {
		if k.Active() {
			out = append(out, k)
		}
	}
	return out
}

func TestSecondMachineCarriesTheRotationOn(t *testing.T) {
	w := newWorld(t)
	stop := w.automation(t)
	a, b := w.rotator(), w.machine("b")
	opts := fastOpts(w)
	opts.NoWait = true

	res, err := a.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		t.Fatalf("machine a: %v", err)
	}
	nk := w.Key(res.New.ID)
	if l, ok := lineage.Parse(nk.Description); !ok || l.OldPrefix != w.Old.Prefix || l.By != "ana@example.com" || l.Reason != ReasonScheduled {
		t.Fatalf("the successor's description %q is not its lineage", nk.Description)
	}

	// b has no journal and another keyring: it finds a's successor on the
	// server and its plaintext in the target, and creates nothing.
	res, err = b.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil || res.New.ID != nk.ID || res.State != Deployed {
		t.Fatalf("machine b: %v, %+v\n%s", err, res, b.Reporter.(*recorder).Text())
	}
	if n := len(w.successors(client.StatusAll)); n != 1 {
		t.Fatalf("%d successors, want 1", n)
	}
	if !strings.Contains(b.Reporter.(*recorder).Text(), "carrying on the rotation under way") {
		t.Error("b did not say it carried a's rotation on")
	}

	// b finishes it.
	rotatetest.Eventually(t, "the automation to move to the new key", func() bool { return w.Key(nk.ID).LastUsedAt != nil })
	b.Reporter.(*recorder).OnWait = func() { w.Srv.Advance(2 * time.Hour) }
	opts.NoWait, opts.Yes = false, true
	if res, err = b.Rotate(context.Background(), w.Old, opts); err != nil || !res.Done {
		t.Fatalf("machine b, second run: %v\n%s", err, b.Reporter.(*recorder).Text())
	}
	if v := envValue(t, w.EnvPath, target.KeySlot); client.PrefixOf(v) != nk.Prefix {
		t.Fatal("the target does not hold only the new key")
	}

	// a's cron line again: already rotated, its journal closed, exit 0.
	res, err = a.Rotate(context.Background(), w.Old, opts)
	if err != nil || !res.Done || !res.AlreadyRotated || res.New == nil || res.New.ID != nk.ID {
		t.Fatalf("machine a, rerun: %v %+v", err, res)
	}
	if items, _ := Status(a.StateDir); len(items) != 0 {
		t.Fatalf("a still lists %d rotations under way", len(items))
	}
	if _, err := w.Store.Get(secret.KeyName(w.Old.ID)); !errors.Is(err, secret.ErrNotFound) {
		t.Error("a kept the old key's plaintext")
	}
	// A machine that took part in nothing: the same answer, no files.
	c := w.machine("c")
	res, err = c.Rotate(context.Background(), w.Old, opts)
	if err != nil || !res.AlreadyRotated {
		t.Fatalf("machine c: %v %+v", err, res)
	}
	if _, err := os.Stat(filepath.Join(c.StateDir, rotlog.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a machine that did nothing wrote a rotation log")
	}
	if _, failed := stop(); failed != 0 {
		t.Fatalf("%d automation calls failed", failed)
	}
}

func TestPlaintextHeldElsewhereSaysWhoHasIt(t *testing.T) {
	w := newWorld(t)
	a, b := w.rotator(), w.machine("b")
	if _, err := a.Create(context.Background(), w.Old, Options{}); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.NoWait = true
	_, err := b.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("want pending, got %v", err)
	}
	for _, want := range []string{"created by ana@example.com", "Run the same command again in a few minutes", "plana keys rotate " + w.Old.ID + " --abort"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if n := len(w.successors(client.StatusAll)); n != 1 {
		t.Fatalf("%d successors, want 1", n)
	}
	// Once a deploys it, b carries on.
	if _, err := a.Deploy(context.Background(), w.Old, Options{Targets: []string{"env-file:" + w.EnvPath}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Rotate(context.Background(), w.Old, opts); !errors.As(err, new(*GateError)) {
		t.Fatalf("b after the deploy: want the gate, got %v", err)
	}
}

// holdCounter counts the emulator's "holding" lines.
type holdCounter struct {
	mu sync.Mutex
	n  int
}

func (h *holdCounter) Write(p []byte) (int, error) {
	h.mu.Lock()
	h.n += bytes.Count(p, []byte("bos-emulator: holding "))
	h.mu.Unlock()
	return len(p), nil
}

func (h *holdCounter) count() int { h.mu.Lock(); defer h.mu.Unlock(); return h.n }

func TestMachinesRacingEndWithOneSuccessor(t *testing.T) {
	held := &holdCounter{}
	w := newWorldConfig(t, emulator.Config{Logger: held})
	const n = 3
	machines := make([]*Rotator, n)
	for i := range machines {
		machines[i] = w.machine(string(rune('a' + i)))
		// Long enough for a create stamped before ours to be committed.
		machines[i].SettleDelay = 300 * time.Millisecond
		if err := w.Srv.ArmHold(emulator.Hold{Method: "POST", Path: "/v1/api-keys"}); err != nil {
			t.Fatal(err)
		}
	}
	opts := fastOpts(w)
	opts.NoWait = true
	results := make([]*Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range machines {
		wg.Go(func() { results[i], errs[i] = m.Rotate(context.Background(), w.Old, opts) })
	}
	rotatetest.Eventually(t, "every machine's create to be held", func() bool { return held.count() == n })
	w.Srv.ReleaseHolds()
	wg.Wait()

	all := w.successors(client.StatusAll)
	if len(all) != n {
		t.Fatalf("%d successors created, want %d (one per machine)", len(all), n)
	}
	active := activeSuccessors(w)
	if len(active) != 1 {
		t.Fatalf("%d active successors after the race, want 1", len(active))
	}
	win := active[0]
	lost := 0
	for i, m := range machines {
		if !errors.Is(errs[i], ErrPending) || results[i].New == nil || results[i].New.ID != win.ID {
			t.Errorf("machine %d: %v, new %+v; want pending on the winner %s", i, errs[i], results[i].New, win.Prefix)
		}
		text := m.Reporter.(*recorder).Text()
		if strings.Contains(text, "lost the race to "+win.Prefix) {
			lost++
		}
		// A loser deleted its own plaintext; only the winner's issuer keeps one.
		for _, k := range all {
			_, err := m.Secrets.Get(secret.KeyName(k.ID))
			if err == nil && k.ID != win.ID {
				t.Errorf("machine %d still holds the plaintext of the revoked %s", i, k.Prefix)
			}
		}
	}
	if lost != n-1 {
		t.Errorf("%d machines lost the race, want %d", lost, n-1)
	}
	if v := envValue(t, w.EnvPath, target.NewKeySlot); v != "" && client.PrefixOf(v) != win.Prefix {
		t.Errorf("the target holds %s, not the winner %s", client.PrefixOf(v), win.Prefix)
	}
	// Revoked losers were never deployed: no call ever presented them.
	for _, k := range all {
		if k.ID != win.ID && w.Key(k.ID).LastUsedAt != nil {
			used := w.Key(k.ID).LastUsedAt
			es, _ := w.API.ExecutionLog(context.Background(), client.ExecutionLogOptions{KeyID: k.ID})
			for _, e := range es {
				if e.Path != "/v1/me" {
					t.Errorf("the losing %s was called (%s at %v): it was handed out", k.Prefix, e.Path, used)
				}
			}
		}
	}
}

func TestAbortBeforeTheRevoke(t *testing.T) {
	w := newWorld(t)
	stop := w.automation(t)
	a, b := w.rotator(), w.machine("b")
	opts := fastOpts(w)
	opts.NoWait = true
	res, err := a.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) {
		t.Fatal(err)
	}
	nk := *res.New
	rotatetest.Eventually(t, "the automation to use the new key", func() bool { return w.Key(nk.ID).LastUsedAt != nil })

	// Called off from another machine.
	res, err = b.Abort(context.Background(), w.Old, Options{Targets: []string{"env-file:" + w.EnvPath}, Reason: "wrong scopes"})
	if err != nil || res.Aborted == nil || res.Aborted.ID != nk.ID {
		t.Fatalf("abort: %v %+v", err, res)
	}
	if v := envValue(t, w.EnvPath, target.NewKeySlot); v != "" {
		t.Fatal("PLANA_KEY_NEW is still in the target")
	}
	if envValue(t, w.EnvPath, target.KeySlot) != w.OldPlain {
		t.Fatal("the abort touched PLANA_KEY")
	}
	if w.Key(nk.ID).Active() || !w.Key(w.Old.ID).Active() {
		t.Fatal("the abort must revoke the new key and keep the old one")
	}
	entries, _ := rotlog.Open(b.StateDir).Entries()
	if last := entries[len(entries)-1]; last.Event != rotlog.EventAborted || last.Reason != "wrong scopes" || last.New == nil || last.New.ID != nk.ID {
		t.Fatalf("last log entry %+v", last)
	}
	// Twice is once.
	if _, err := b.Abort(context.Background(), w.Old, Options{Targets: []string{"env-file:" + w.EnvPath}}); err == nil || !strings.Contains(err.Error(), "nothing to call off") {
		t.Fatalf("second abort: %v", err)
	}

	// a's next run learns its key was revoked elsewhere, deletes its
	// plaintext and starts a fresh rotation.
	res, err = a.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil || res.New.ID == nk.ID {
		t.Fatalf("a after the abort: %v %+v", err, res)
	}
	if _, err := w.Store.Get(secret.KeyName(nk.ID)); !errors.Is(err, secret.ErrNotFound) {
		t.Error("a kept the aborted key's plaintext")
	}
	if len(activeSuccessors(w)) != 1 {
		t.Fatal("want exactly one active successor")
	}
	rotatetest.Eventually(t, "the automation to use the new key", func() bool { return w.Key(res.New.ID).LastUsedAt != nil })
	w.pushClock()
	opts.NoWait, opts.Yes = false, true
	if _, err := a.Rotate(context.Background(), w.Old, opts); err != nil {
		t.Fatal(err)
	}
	_, err = b.Abort(context.Background(), w.Old, Options{Targets: []string{"env-file:" + w.EnvPath}})
	if err == nil || !strings.Contains(err.Error(), "a revoked key cannot be re-enabled") {
		t.Fatalf("abort after the revoke: %v", err)
	}
	if _, failed := stop(); failed != 0 {
		t.Fatalf("%d automation calls failed", failed)
	}
}

func TestWatchAfterRevokeReportsTheForgottenPlace(t *testing.T) {
	w := newWorld(t)
	_, opts, stop := w.atGate(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.rep.OnWait = func() { w.Srv.Advance(2 * time.Hour) }
	w.rep.OnWaiting = func(line string) {
		if strings.Contains(line, "watching for") {
			// A worker nobody remembered, then Ctrl-C before the window ends.
			if err := w.Call("legacy-cron/0.9", w.OldPlain); !errors.Is(err, client.ErrUnauthenticated) {
				t.Errorf("the old key after the revoke: %v", err)
			}
			cancel()
		}
	}
	opts.NoWait, opts.Yes, opts.WatchAfterRevoke = false, true, time.Hour
	res, err := w.rotator().Rotate(ctx, w.Old, opts)
	if err != nil || !res.Done {
		t.Fatalf("%v\n%s", err, w.rep.Text())
	}
	if len(res.Refused) != 1 || res.Refused[0].UserAgent != "legacy-cron/0.9" || res.Refused[0].Path != "/v1/stock-levels" || res.Refused[0].Calls != 1 {
		t.Fatalf("refused after the revoke: %+v", res.Refused)
	}
	if !strings.Contains(w.rep.Text(), "refused call with the old key from") {
		t.Errorf("the watch did not report the place:\n%s", w.rep.Text())
	}
	stop()
	srcs, err := gate.RefusedCalls(context.Background(), w.API, w.Old.ID, *w.Key(w.Old.ID).RevokedAt)
	if err != nil || len(srcs) != 1 || srcs[0].UserAgent != "legacy-cron/0.9" {
		t.Fatalf("RefusedCalls: %v %+v", err, srcs)
	}
}

func TestDryRunPlansToCarryOnTheRotationUnderWay(t *testing.T) {
	w := newWorld(t)
	res, err := w.rotator().Create(context.Background(), w.Old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := w.machine("b")
	opts := fastOpts(w)
	opts.DryRun = true
	plan, err := b.Rotate(context.Background(), w.Old, opts)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan.Plan, "\n")
	if !strings.Contains(text, "carry on the rotation under way: "+res.New.Name+" ("+res.New.Prefix+")") || strings.Contains(text, "create ") {
		t.Fatalf("plan:\n%s", text)
	}
	if n := len(w.successors(client.StatusAll)); n != 1 {
		t.Fatalf("a dry run changed the server: %d successors", n)
	}
	if _, err := os.Stat(b.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Error("a dry run wrote a state directory")
	}
}

func TestRevokedKeyWithoutSuccessorIsNotRotated(t *testing.T) {
	w := newWorld(t)
	if _, err := w.API.RevokeKey(context.Background(), w.Old.ID); err != nil {
		t.Fatal(err)
	}
	_, err := w.rotator().Rotate(context.Background(), w.Old, fastOpts(w))
	if err == nil || !strings.Contains(err.Error(), "already revoked: nothing to rotate") {
		t.Fatalf("got %v", err)
	}
	if n := len(w.successors(client.StatusAll)); n != 0 {
		t.Fatalf("%d successors of a revoked key", n)
	}
}

// The single steps carry a rotation on from another machine too.
func TestSingleStepsFromAnotherMachine(t *testing.T) {
	w := newWorld(t)
	res, _, stop := w.atGate(t)
	b := w.machine("b")
	b.Reporter.(*recorder).OnWait = func() { w.Srv.Advance(2 * time.Hour) }
	vres, err := b.Verify(context.Background(), w.Old, Options{QuietPeriod: time.Hour, PollInterval: 5 * time.Millisecond, Timeout: 20 * time.Second})
	if err != nil || vres.New == nil || vres.New.ID != res.New.ID || vres.State != Verified {
		t.Fatalf("verify on b: %v %+v", err, vres)
	}
	rres, err := b.Revoke(context.Background(), w.Old, Options{Yes: true})
	if err != nil || !rres.Done {
		t.Fatalf("revoke on b: %v %+v", err, rres)
	}
	if w.Key(w.Old.ID).Active() || len(activeSuccessors(w)) != 1 {
		t.Fatal("want the old key revoked and one active successor")
	}
	// Deploy on a third machine: already rotated.
	dres, err := w.machine("c").Deploy(context.Background(), w.Old, Options{Targets: []string{"env-file:" + w.EnvPath}})
	if err != nil || !dres.AlreadyRotated {
		t.Fatalf("deploy on c: %v %+v", err, dres)
	}
	if _, failed := stop(); failed != 0 {
		t.Fatalf("%d automation calls failed", failed)
	}
}

// A rotation revoked elsewhere leaves this machine's targets with the new
// key alone, whichever of them is first: here an exec: target comes before
// the env file that can be read back for the plaintext.
func TestRevokedElsewhereFinalizesEveryTarget(t *testing.T) {
	w := newWorld(t)
	ran := filepath.Join(t.TempDir(), "steps")
	opts := fastOpts(w)
	opts.Targets = []string{`exec:echo "$PLANA_STEP" >> ` + ran, "env-file:" + w.EnvPath}
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		t.Fatalf("want the rotation at its gate: %v", err)
	}
	if _, err := w.API.RevokeKey(context.Background(), w.Old.ID); err != nil {
		t.Fatal(err)
	}
	res, err = w.rotator().Rotate(context.Background(), w.Old, opts)
	if err != nil || !res.AlreadyRotated {
		t.Fatalf("rerun after the revoke elsewhere: %v %+v\n%s", err, res, w.rep.Text())
	}
	if v := envValue(t, w.EnvPath, target.KeySlot); client.PrefixOf(v) != res.New.Prefix {
		t.Errorf("the env file holds %s under %s, want the new key %s", client.PrefixOf(v), target.KeySlot, res.New.Prefix)
	}
	if v := envValue(t, w.EnvPath, target.NewKeySlot); v != "" {
		t.Errorf("the env file still holds %s", target.NewKeySlot)
	}
	if data, _ := os.ReadFile(ran); string(data) != "deploy\nfinalize\n" {
		t.Errorf("the exec: target ran for %q, want deploy then finalize", data)
	}
}

// A machine carrying a rotation on finds the new key's plaintext in any of
// its targets that can be read back, not only the first.
func TestCarriedOnPlaintextFromAnyTarget(t *testing.T) {
	w := newWorld(t)
	opts := fastOpts(w)
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		t.Fatalf("machine a: %v", err)
	}
	got := filepath.Join(t.TempDir(), "got")
	opts.Targets = []string{"exec:cat > " + got, "env-file:" + w.EnvPath}
	b := w.machine("b")
	res, err = b.Rotate(context.Background(), w.Old, opts)
	if _, gate := errors.AsType[*GateError](err); !gate || res.State != Deployed {
		t.Fatalf("machine b: want it deployed and waiting at the gate, got %v\n%s", err, b.Reporter.(*recorder).Text())
	}
	if data, _ := os.ReadFile(got); client.PrefixOf(strings.TrimSpace(string(data))) != res.New.Prefix {
		t.Errorf("the exec: target got %q, want the new key %s", client.PrefixOf(strings.TrimSpace(string(data))), res.New.Prefix)
	}
}
