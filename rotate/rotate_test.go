package rotate

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

func fastOpts(w *world) Options {
	return Options{Targets: []string{"env-file:" + w.EnvPath}, QuietPeriod: time.Hour, PollInterval: 5 * time.Millisecond, Timeout: 20 * time.Second}
}

// pushClock moves the server's clock two hours on every wait, so an hour of
// quiet passes in a moment once the automation has left the old key.
func (w *world) pushClock() { w.rep.OnWait = func() { w.Srv.Advance(2 * time.Hour) } }

func TestFullRotationWithoutDowntime(t *testing.T) {
	w := newWorld(t)
	stop := w.automation(t)
	rotatetest.Eventually(t, "the automation to use the old key", func() bool { return w.Key(w.Old.ID).LastUsedAt != nil })

	// First run: steps 1 and 2, then the gate is not met yet.
	opts := fastOpts(w)
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	var ge *GateError
	if !errors.As(err, &ge) || !errors.Is(err, ErrPending) {
		t.Fatalf("first run: want a GateError, got %v", err)
	}
	if res.New == nil || res.State != Deployed {
		t.Fatalf("first run stopped at %q, new %v", res.State, res.New)
	}
	if want := "Nightly stock sync (" + strconv.Itoa(w.Srv.Now().Year()) + ")"; res.New.Name != want {
		t.Errorf("new key named %q, want %q", res.New.Name, want)
	}
	data, _ := os.ReadFile(w.EnvPath)
	if v, _ := target.LookupEnv(data, target.KeySlot); v != w.OldPlain {
		t.Error("deploy must keep PLANA_KEY")
	}
	newPlain, err := w.Store.Get(secret.KeyName(res.New.ID))
	if err != nil {
		t.Fatal("the new plaintext is not in the keyring:", err)
	}
	if v, _ := target.LookupEnv(data, target.NewKeySlot); v != newPlain {
		t.Error("PLANA_KEY_NEW is not the new key")
	}
	rotatetest.Eventually(t, "the automation to move to the new key", func() bool { return w.Key(res.New.ID).LastUsedAt != nil })

	// Second run: waits (pushing the server's clock) until the old key is
	// quiet, finalizes the env file and revokes the old key.
	w.pushClock()
	opts.NoWait, opts.Yes = false, true
	res, err = w.rotator().Rotate(context.Background(), w.Old, opts)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, w.rep.Text())
	}
	if !res.Done || res.State != Done {
		t.Fatalf("not done: %+v", res)
	}
	// Keep the automation running on the finalized file for a moment.
	before := w.Key(res.New.ID).LastUsedAt
	rotatetest.Eventually(t, "the automation to keep calling", func() bool {
		lu := w.Key(res.New.ID).LastUsedAt
		return lu != nil && lu.After(*before)
	})
	calls, failed := stop()
	if failed != 0 {
		t.Fatalf("%d of %d automation calls failed during the rotation", failed, calls)
	}
	if w.Key(w.Old.ID).Active() {
		t.Error("the old key is still active")
	}
	data, _ = os.ReadFile(w.EnvPath)
	if v, _ := target.LookupEnv(data, target.KeySlot); v != newPlain {
		t.Error("after finalize PLANA_KEY must be the new key")
	}
	if _, ok := target.LookupEnv(data, target.NewKeySlot); ok {
		t.Error("after finalize PLANA_KEY_NEW must be gone")
	}
	if !strings.HasPrefix(string(data), "# stock sync\nAPI_URL=") {
		t.Errorf("other lines changed: %q", redactAll(string(data)))
	}
	if _, err := w.Store.Get(secret.KeyName(w.Old.ID)); !errors.Is(err, secret.ErrNotFound) {
		t.Error("the old plaintext must be deleted from the keyring")
	}
	if n := len(w.successors(client.StatusActive)); n != 1 {
		t.Errorf("%d active successors, want 1", n)
	}
	if _, err := os.Stat(w.rotator().journals().path(w.Old.ID)); !os.IsNotExist(err) {
		t.Error("a finished journal must leave the active rotations")
	}
	if st, _ := Status(w.StateDir); len(st) != 0 {
		t.Errorf("status lists %d rotations after the end", len(st))
	}
	es, err := w.rotator().Log().Entries()
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range es {
		events = append(events, e.Event)
		if e.Actor.Email != "ana@example.com" || e.Actor.Local != "tester@box" || e.Reason != ReasonScheduled {
			t.Errorf("log entry %s: actor %+v reason %q", e.Event, e.Actor, e.Reason)
		}
	}
	if got := strings.Join(events, ","); got != "created,deployed,verified,finalized,revoked,rotated" {
		t.Errorf("log events %s", got)
	}
	if err := w.rotator().Log().Verify(); err != nil {
		t.Error(err)
	}
	w.assertNoPlaintext()
}

func redactAll(s string) string { return rotatetest.KeyShape.ReplaceAllString(s, "<key>") }

func TestForgottenPlaceKeepsGateShut(t *testing.T) {
	w := newWorld(t)
	_, opts, stop := w.atGate(t)
	defer stop()
	w.Srv.Advance(2 * time.Hour)
	// A cron job nobody remembered still presents the old key.
	if err := w.Call("forgotten-cron/0.1", w.OldPlain); err != nil {
		t.Fatal(err)
	}
	_, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	var ge *GateError
	if !errors.As(err, &ge) {
		t.Fatalf("want a GateError, got %v", err)
	}
	if !ge.Report.NewUsed || ge.Report.OldQuiet {
		t.Fatalf("report %+v", ge.Report)
	}
	if len(ge.Report.Sources) != 1 || ge.Report.Sources[0].UserAgent != "forgotten-cron/0.1" || ge.Report.Sources[0].Path != "/v1/stock-levels" || ge.Report.Sources[0].Calls != 1 {
		t.Errorf("sources %+v", ge.Report.Sources)
	}
	if !strings.Contains(err.Error(), "forgotten-cron/0.1") {
		t.Errorf("the error must name the forgotten place: %v", err)
	}
	// Revoke is refused too, and --force overrides it loudly.
	_, err = w.rotator().Revoke(context.Background(), w.Old, Options{Yes: true})
	if !errors.As(err, &ge) {
		t.Fatalf("revoke: want a GateError, got %v", err)
	}
	if !w.Key(w.Old.ID).Active() {
		t.Fatal("a refused revoke revoked")
	}
	if _, err := w.rotator().Revoke(context.Background(), w.Old, Options{Yes: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if w.Key(w.Old.ID).Active() {
		t.Error("--force did not revoke")
	}
	if !strings.Contains(w.rep.Text(), "warn: REVOKING ALTHOUGH THE GATE DOES NOT HOLD") {
		t.Error("--force must warn loudly")
	}
}

func TestQuietPeriodUsesServerTime(t *testing.T) {
	w := newWorld(t)
	if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.QuietPeriod, opts.NoWait = 24*time.Hour, true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("want pending, got %v", err)
	}
	newPlain, _ := w.Store.Get(secret.KeyName(res.New.ID))
	if err := w.Call("stock-sync/1.4", newPlain, w.OldPlain); err != nil {
		t.Fatal(err)
	}
	for _, adv := range []time.Duration{0, 23 * time.Hour} {
		w.Srv.Advance(adv)
		_, err = w.rotator().Verify(context.Background(), w.Old, opts)
		var ge *GateError
		if !errors.As(err, &ge) || ge.Report.OldQuiet || !ge.Report.NewUsed {
			t.Fatalf("after %s of server time the gate must still wait for the old key's quiet: %v", adv, err)
		}
	}
	w.Srv.Advance(2 * time.Hour) // 25h in all, while the local clock moved by milliseconds
	r2, err := w.rotator().Verify(context.Background(), w.Old, opts)
	if err != nil || !r2.Gate.Passed {
		t.Fatalf("after 25h of server time the gate must hold: %v", err)
	}
	if d := time.Until(r2.Gate.Now); d < 24*time.Hour {
		t.Errorf("gate time %s is not the server's", r2.Gate.Now)
	}
}

func TestResumeAfterCrashAtEachStep(t *testing.T) {
	for _, point := range []string{"create-answered", "created", "checked", "deployed", "verified", "finalized", "revoked"} {
		t.Run(point, func(t *testing.T) {
			w := newWorld(t)
			stop := w.automation(t)
			defer stop()
			w.pushClock()
			r := w.rotator()
			r.hook = func(p string) error {
				if p == point {
					return errors.New("crash at " + p)
				}
				return nil
			}
			opts := fastOpts(w)
			opts.Yes = true
			if _, err := r.Rotate(context.Background(), w.Old, opts); err == nil || !strings.Contains(err.Error(), "crash at") {
				t.Fatalf("want the simulated crash, got %v", err)
			}
			res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
			if err != nil {
				t.Fatalf("resume: %v\n%s", err, w.rep.Text())
			}
			if !res.Done {
				t.Fatalf("resume did not finish: %+v", res)
			}
			active := w.successors(client.StatusActive)
			if len(active) != 1 || active[0].ID != res.New.ID {
				t.Fatalf("want exactly one active successor %s, got %d", res.New.ID, len(active))
			}
			if point == "create-answered" {
				all := w.successors(client.StatusAll)
				if len(all) != 2 {
					t.Fatalf("the lost create's key must exist, revoked: %d successors", len(all))
				}
				if !strings.HasSuffix(res.New.Name, "-2)") {
					t.Errorf("the replacement of a lost key is named %q", res.New.Name)
				}
			} else if n := len(w.successors(client.StatusAll)); n != 1 {
				t.Errorf("a crash at %s led to %d successors", point, n)
			}
			if err := w.rotator().Log().Verify(); err != nil {
				t.Error(err)
			}
			w.assertNoPlaintext()
		})
	}
}

// failingKeys is a keyring that works for the probe but refuses key entries.
type failingKeys struct{ *secret.Memory }

func (f failingKeys) Set(name, value string) error {
	if strings.HasPrefix(name, "key:") {
		return errors.New("keychain is locked")
	}
	return f.Memory.Set(name, value)
}

func TestKeyringSetFailureRevokesNewKey(t *testing.T) {
	w := newWorld(t)
	r := w.rotator()
	r.Secrets = failingKeys{w.Store}
	_, err := r.Create(context.Background(), w.Old, fastOpts(w))
	if err == nil || !strings.Contains(err.Error(), "revoked at once") {
		t.Fatalf("want the store failure reported, got %v", err)
	}
	if n := len(w.successors(client.StatusActive)); n != 0 {
		t.Fatalf("%d active successors left behind", n)
	}
	if n := len(w.successors(client.StatusRevoked)); n != 1 {
		t.Fatalf("want the unstored key revoked, got %d revoked", n)
	}
	w.assertNoPlaintext()
}

// brokenKeyring is no keyring at all.
type brokenKeyring struct{}

func (brokenKeyring) Get(string) (string, error) { return "", secret.ErrUnavailable }
func (brokenKeyring) Set(string, string) error   { return secret.ErrUnavailable }
func (brokenKeyring) Delete(string) error        { return secret.ErrUnavailable }

func TestNoKeyringFailsClosed(t *testing.T) {
	w := newWorld(t)
	r := w.rotator()
	r.Secrets = brokenKeyring{}
	before := len(w.Keys(client.StatusAll))
	opts := fastOpts(w)
	opts.Targets = nil
	_, err := r.Create(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrNoKeyring) || !errors.Is(err, secret.ErrUnavailable) {
		t.Fatalf("want ErrNoKeyring, got %v", err)
	}
	for _, hint := range []string{"PLANA_TOKEN", "--to env-file:PATH", "--print-secret"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("the error must mention %s", hint)
		}
	}
	if after := len(w.Keys(client.StatusAll)); after != before {
		t.Fatal("a key was created without a keyring")
	}
	// With a deploy target the key goes straight to the automation.
	var out strings.Builder
	opts = fastOpts(w)
	opts.Targets, opts.NoWait, opts.SecretOut = []string{"stdout"}, true, &out
	res, err := r.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("want pending, got %v", err)
	}
	if client.PrefixOf(strings.TrimSpace(out.String())) != res.New.Prefix {
		t.Error("stdout target did not get the new key")
	}
}

func TestEmergencyRevokesFirst(t *testing.T) {
	w := newWorld(t)
	r := w.rotator()
	var sawRevokedBeforeDeploy bool
	r.hook = func(p string) error {
		if p == "revoked" {
			data, _ := os.ReadFile(w.EnvPath)
			_, deployed := target.LookupEnv(data, target.NewKeySlot)
			sawRevokedBeforeDeploy = !w.Key(w.Old.ID).Active() && !deployed
		}
		return nil
	}
	opts := fastOpts(w)
	opts.Emergency, opts.NoWait = ReasonCompromise, true
	res, err := r.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("want pending on the new key's first use, got %v", err)
	}
	if !sawRevokedBeforeDeploy {
		t.Fatal("an emergency must revoke the old key before deploying")
	}
	if err := w.Call("stock-sync/1.4", w.OldPlain); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("the old key still works: %v", err)
	}
	newPlain, _ := w.Store.Get(secret.KeyName(res.New.ID))
	if err := w.Call("stock-sync/1.4", newPlain); err != nil {
		t.Fatal(err)
	}
	res, err = w.rotator().Rotate(context.Background(), w.Old, Options{NoWait: true})
	if err != nil || !res.Done || res.Reason != ReasonCompromise {
		t.Fatalf("emergency resume: %v %+v", err, res)
	}
	// Step 4 still happens: the revoked key does not linger in the env file.
	data, _ := os.ReadFile(w.EnvPath)
	if v, _ := target.LookupEnv(data, target.KeySlot); v != newPlain {
		t.Error("after an emergency the env file's " + target.KeySlot + " is not the new key")
	}
	if _, ok := target.LookupEnv(data, target.NewKeySlot); ok {
		t.Error("after an emergency the env file still has " + target.NewKeySlot)
	}
	es, _ := w.rotator().Log().Entries()
	if len(es) == 0 || es[len(es)-1].Reason != ReasonCompromise {
		t.Error("the log must carry the emergency reason")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	w := newWorld(t)
	before := len(w.Keys(client.StatusAll))
	file, _ := os.ReadFile(w.EnvPath)
	names := len(w.Store.Names())
	opts := fastOpts(w)
	opts.DryRun = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan) < 5 || !strings.Contains(strings.Join(res.Plan, "\n"), "Nightly stock sync (") {
		t.Errorf("plan %q", res.Plan)
	}
	if after := len(w.Keys(client.StatusAll)); after != before {
		t.Error("dry run created a key")
	}
	if after, _ := os.ReadFile(w.EnvPath); string(after) != string(file) {
		t.Error("dry run edited the env file")
	}
	if len(w.Store.Names()) != names {
		t.Error("dry run wrote to the keyring")
	}
	if _, err := os.Stat(w.StateDir); !os.IsNotExist(err) {
		t.Error("dry run wrote state")
	}
}

func TestSecondProcessIsLockedOut(t *testing.T) {
	w := newWorld(t)
	lk, err := w.rotator().journals().lock(w.Old.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	_, err = w.rotator().Rotate(context.Background(), w.Old, fastOpts(w))
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("want a LockedError naming this process, got %v", err)
	}
	if !strings.Contains(err.Error(), "process ") {
		t.Error(err)
	}
	// The holder's start is on its own clock, not BOS's: in UTC, labelled.
	le.Since, le.Host = time.Date(2026, 11, 26, 2, 57, 39, 0, time.FixedZone("CET", 3600)), "vm"
	if want := "since 2026-11-26T01:57:39Z (vm's clock)"; !strings.Contains(le.Error(), want) {
		t.Errorf("%v\nwant %q", le, want)
	}
}

func TestDamagedJournal(t *testing.T) {
	w := newWorld(t)
	js := w.rotator().journals()
	os.MkdirAll(js.dir, 0o700)
	os.WriteFile(js.path(w.Old.ID), []byte(`{"version":1,"old":{"id":`), 0o600)
	_, err := w.rotator().Rotate(context.Background(), w.Old, fastOpts(w))
	var je *JournalError
	if !errors.As(err, &je) || !strings.Contains(err.Error(), "--rebuild") || !strings.Contains(err.Error(), js.path(w.Old.ID)) {
		t.Fatalf("want a JournalError naming the file and --rebuild, got %v", err)
	}
}

// A create whose answer was lost, resumed after the server forgot its
// Idempotency-Key: the key it made is found by name and revoked, and only
// the fresh one stays active.
func TestResumeLostCreateAfterReplayWindow(t *testing.T) {
	w := newWorld(t)
	r := w.rotator()
	r.hook = func(p string) error {
		if p == "create-answered" {
			return errors.New("crash at " + p)
		}
		return nil
	}
	opts := fastOpts(w)
	opts.NoWait = true
	if _, err := r.Rotate(context.Background(), w.Old, opts); err == nil {
		t.Fatal("want the simulated crash")
	}
	lost := w.successors(client.StatusActive)
	if len(lost) != 1 {
		t.Fatalf("the lost create made %d keys", len(lost))
	}
	w.Srv.Advance(25 * time.Hour)
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if res == nil || res.New == nil {
		t.Fatalf("resume: %v", err)
	}
	active := w.successors(client.StatusActive)
	if len(active) != 1 || active[0].ID != res.New.ID || active[0].ID == lost[0].ID {
		t.Fatalf("want only the fresh successor active, got %d (lost key still active: %v)", len(active), w.Key(lost[0].ID).Active())
	}
	if _, err := w.Store.Get(secret.KeyName(res.New.ID)); err != nil {
		t.Errorf("the fresh key's plaintext is not in the keyring: %v", err)
	}
	es, _ := w.rotator().Log().Entries()
	var abandoned bool
	for _, e := range es {
		abandoned = abandoned || (e.Event == rotlog.EventAbandoned && e.New != nil && e.New.ID == lost[0].ID)
	}
	if !abandoned {
		t.Error("the rotation log does not record the lost key as abandoned")
	}
}

// Step 5's last check, in the run that waited at step 3, reads on from
// where step 3's gate left off, and step 3 from where the first run's gate
// left off (its memory in the journal): the old key's history over the
// migration's look-back is read once per rotation, not again by a later
// run nor right before the revoke.
func TestRevokeCheckReadsOnFromTheGate(t *testing.T) {
	w := newWorld(t)
	_, opts, stop := w.atGate(t)
	defer stop()

	var mu sync.Mutex
	var sinces []time.Time // of the reads of the old key's log
	rot := w.rotator()
	rot.API = w.APIThrough(t, func(r *http.Request) {
		if q := r.URL.Query(); r.URL.Path == "/v1/execution-log" && q.Get("key_id") == w.Old.ID {
			since, _ := time.Parse(time.RFC3339Nano, q.Get("since"))
			mu.Lock()
			sinces = append(sinces, since)
			mu.Unlock()
		}
	})
	w.pushClock()
	opts.NoWait, opts.Yes = false, true
	if res, err := rot.Rotate(context.Background(), w.Old, opts); err != nil || !res.Done {
		t.Fatalf("second run: %v\n%s", err, w.rep.Text())
	}
	mu.Lock()
	defer mu.Unlock()
	lookBacks := 0
	for _, s := range sinces {
		if w.Srv.Now().Sub(s) > 7*24*time.Hour {
			lookBacks++
		}
	}
	if lookBacks != 0 || len(sinces) < 2 {
		t.Errorf("the second run read the old key's log over the look-back %d times in %d reads, want never: the first run's gate did", lookBacks, len(sinces))
	}
}
