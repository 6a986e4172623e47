package rotate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

// member is ben, a workspace member with a management key of his own
// (keys:manage stock:read): he may create keys with the scopes he holds,
// and any description.
func (w *world) member() *client.Client {
	w.T.Helper()
	ctx := context.Background()
	ben, err := w.Srv.CreateUser(ctx, "ben@example.com", "member", []string{client.ScopeManage, "stock:read"})
	if err != nil {
		w.T.Fatal(err)
	}
	mgmt, _, err := w.Srv.MintKey(ctx, ben.ID, "ben's plana", []string{client.ScopeManage, "stock:read"}, time.Time{})
	if err != nil {
		w.T.Fatal(err)
	}
	return w.ClientFor("ben-script", mgmt)
}

// claim has c create a key named name with scopes, whose description
// claims in by's name that it replaces old.
func (w *world) claim(c *client.Client, old client.APIKey, name, by string, scopes ...string) *client.CreatedKey {
	w.T.Helper()
	desc := lineage.Claim{OldPrefix: old.Prefix, OldName: old.Name, By: by, On: w.Srv.Now(), Host: "ben-laptop", Reason: ReasonScheduled}.Description()
	ck, err := c.CreateKey(context.Background(), client.CreateKeyRequest{Name: name, Scopes: scopes, Description: desc}, client.NewIdempotencyKey())
	if err != nil {
		w.T.Fatal(err)
	}
	return ck
}

// Issue 19 (A1): a member's forged successor of the admin's key is shown
// and ignored. A revoke on a fresh machine has no rotation to finish, a
// dry run and a rotation create their own successor, and the automation
// never fails.
func TestForgedSuccessorIsIgnored(t *testing.T) {
	w := newWorld(t)
	// Last night's run of the automation, then the member's forgery, in use;
	// a day later the old key has been quiet: a gate would hold.
	stop := w.automation(t)
	rotatetest.Eventually(t, "the automation to use the old key", func() bool { return w.Key(w.Old.ID).LastUsedAt != nil })
	if _, failed := stop(); failed != 0 {
		t.Fatalf("%d automation calls failed", failed)
	}
	forged := w.claim(w.member(), w.Old, "Nightly stock sync (2026)", "ana@example.com", "stock:read")
	w.MustCall("forger/1.0", forged.Plaintext)
	w.Srv.Advance(24 * time.Hour)
	w.MustCall("forger/1.0", forged.Plaintext)

	b := w.machine("b")
	_, err := b.Revoke(context.Background(), w.Old, Options{Yes: true, QuietPeriod: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "no rotation of Nightly stock sync (2025) ("+w.Old.Prefix+") is under way: nothing was revoked") {
		t.Fatalf("revoke on a fresh machine: %v", err)
	}
	if !w.Key(w.Old.ID).Active() {
		t.Fatal("the old key was revoked in favour of a forgery")
	}
	said := b.Reporter.(*recorder).Text()
	for _, want := range []string{"Nightly stock sync (2026) (" + forged.APIKey.Prefix + "), created by ben@example.com (member) on ",
		"claims to replace " + w.Old.Prefix + " and is not trusted", "its description names ana@example.com, but ben@example.com created it"} {
		if !strings.Contains(said, want) {
			t.Errorf("the revoke did not say %q:\n%s", want, said)
		}
	}
	if strings.Contains(said, "carrying on") {
		t.Errorf("the revoke carried the forgery's rotation on:\n%s", said)
	}

	stop = w.automation(t)
	opts := fastOpts(w)
	opts.DryRun = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if err != nil || slices.ContainsFunc(res.Plan, func(l string) bool { return strings.Contains(l, "carry on") }) ||
		!slices.ContainsFunc(res.Plan, func(l string) bool { return strings.HasPrefix(l, "create ") }) {
		t.Fatalf("dry run: %v %q", err, res.Plan)
	}

	opts.DryRun, opts.NoWait = false, true
	res, err = w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil || res.New.ID == forged.APIKey.ID {
		t.Fatalf("rotation: %v, new %+v: want its own successor", err, res.New)
	}
	if len(res.Claimants) != 1 || res.Claimants[0].Key.ID != forged.APIKey.ID {
		t.Fatalf("claimants %+v", res.Claimants)
	}
	if nk := w.Key(res.New.ID); nk.CreatedBy.Email != "ana@example.com" {
		t.Errorf("the new key was created by %s", nk.CreatedBy.Email)
	}
	if v := envValue(t, w.EnvPath, "PLANA_KEY_NEW"); client.PrefixOf(v) != res.New.Prefix {
		t.Errorf("the target holds %s, not plana's own successor %s", client.PrefixOf(v), res.New.Prefix)
	}
	if _, failed := stop(); failed != 0 {
		t.Fatalf("%d automation calls failed", failed)
	}
}

// Issue 19 (A2): an emergency carries on no successor that was there
// before it, trusted or not. It creates its own (the race rule never makes
// it give way to one it passed over), names each with the command that
// revokes it, and that command works.
func TestEmergencyAdoptsNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ben := w.member()
	// Ben's own key and the successor he prepared for it before he left.
	report, err := ben.CreateKey(ctx, client.CreateKeyRequest{Name: "Stock report", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
	if err != nil {
		t.Fatal(err)
	}
	prepared := w.claim(ben, report.APIKey, "Stock report (2026)", "ben@example.com", "stock:read")
	env := filepath.Join(t.TempDir(), "report.env")
	if err := os.WriteFile(env, []byte("PLANA_KEY="+report.Plaintext+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := w.rotator()
	a.SettleDelay = 50 * time.Millisecond // long enough to list the prepared successor again
	res, err := a.Rotate(ctx, report.APIKey, Options{Emergency: ReasonDeparted, Targets: []string{"env-file:" + env}, NoWait: true, PollInterval: 5 * time.Millisecond})
	if !errors.Is(err, ErrPending) || res.New == nil || res.New.ID == prepared.APIKey.ID {
		t.Fatalf("emergency: %v, new %+v: want a fresh key of its own", err, res.New)
	}
	if w.Key(report.APIKey.ID).Active() {
		t.Fatal("the departed member's key is still active")
	}
	if v := envValue(t, env, "PLANA_KEY_NEW"); client.PrefixOf(v) != res.New.Prefix {
		t.Fatalf("the target holds %s, want the fresh %s", client.PrefixOf(v), res.New.Prefix)
	}
	if len(res.PassedOver) != 1 || res.PassedOver[0].ID != prepared.APIKey.ID {
		t.Fatalf("passed over %+v", res.PassedOver)
	}
	said := w.rep.Text()
	if want := "not adopting Stock report (2026) (" + prepared.APIKey.Prefix + "), created by ben@example.com on "; !strings.Contains(said, want) ||
		!strings.Contains(said, "revoke it with plana keys revoke "+prepared.APIKey.ID+" --force --yes") {
		t.Errorf("the emergency did not list the prepared successor with its revoke command:\n%s", said)
	}
	if strings.Contains(said, "carrying on") || strings.Contains(said, "lost the race") {
		t.Errorf("the emergency gave way to the prepared successor:\n%s", said)
	}
	// Every machine now sees the emergency's key as the one kept.
	if kept, ok := lineage.NewFamily(w.Keys(client.StatusAll), client.User{}).Kept(report.APIKey.ID); !ok || kept.ID != res.New.ID {
		t.Errorf("kept %s, want the emergency's %s", kept.Prefix, res.New.Prefix)
	}
	// The listed command revokes the prepared successor, and nothing else.
	out, err := w.machine("c").Revoke(ctx, prepared.APIKey, Options{Force: true, Yes: true})
	if err != nil || !out.Done || out.New != nil {
		t.Fatalf("revoking the prepared successor: %v %+v", err, out)
	}
	if w.Key(prepared.APIKey.ID).Active() || !w.Key(res.New.ID).Active() {
		t.Fatal("the revoke command did not revoke exactly the prepared successor")
	}
}

// A compromise after a member forged a successor of the admin's key: the
// forgery is listed with its revoke command, never adopted, and the fresh
// key is deployed, so the outage ends once the automation reads it.
func TestEmergencyAfterAForgery(t *testing.T) {
	w := newWorld(t)
	forged := w.claim(w.member(), w.Old, "Nightly stock sync (2026)", "ana@example.com", "stock:read")
	opts := fastOpts(w)
	opts.Emergency, opts.NoWait = ReasonCompromise, true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil || res.New.ID == forged.APIKey.ID || !slices.ContainsFunc(res.Targets, func(t TargetState) bool { return t.Deployed }) {
		t.Fatalf("emergency: %v %+v", err, res)
	}
	if v := envValue(t, w.EnvPath, "PLANA_KEY_NEW"); client.PrefixOf(v) != res.New.Prefix {
		t.Fatalf("the target holds %s, want the fresh %s", client.PrefixOf(v), res.New.Prefix)
	}
	if !strings.Contains(w.rep.Text(), "claims to replace "+w.Old.Prefix+" and is not trusted, so plana ignores it: ") ||
		!strings.Contains(w.rep.Text(), "; revoke it with plana keys revoke "+forged.APIKey.ID+" --force --yes") {
		t.Errorf("the forgery is not listed with its revoke command:\n%s", w.rep.Text())
	}
	if l, ok := lineage.Parse(w.Key(res.New.ID).Description); !ok || !l.Emergency || l.Reason != ReasonCompromise {
		t.Errorf("the fresh key's lineage %+v does not say it is an emergency's", l)
	}
}

// A rotation that carried on another machine's successor, then run as an
// emergency, gives that successor up too: an emergency trusts only its own.
func TestEmergencyOverAnAdoptedRotation(t *testing.T) {
	w := newWorld(t)
	a, b := w.rotator(), w.machine("b")
	first, err := a.Create(context.Background(), w.Old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	opts.NoWait = true
	if res, err := b.Rotate(context.Background(), w.Old, opts); !errors.Is(err, ErrPending) || res.New == nil || res.New.ID != first.New.ID {
		t.Fatalf("b carrying a's rotation on: %v", err)
	}
	opts.Emergency = ReasonLostDevice
	res, err := b.Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil || res.New.ID == first.New.ID {
		t.Fatalf("b's emergency: %v, new %+v: want a key of its own", err, res.New)
	}
	if !slices.ContainsFunc(res.PassedOver, func(k ref.Key) bool { return k.ID == first.New.ID }) {
		t.Errorf("passed over %+v, want a's successor", res.PassedOver)
	}
	if w.Key(w.Old.ID).Active() {
		t.Error("the emergency left the old key active")
	}
}

// Issue 19 (G19): a machine without a keyring that lost the race says which
// key won and that it revoked its own, not that the winner's key "was only
// in this run's memory".
func TestLostRaceSaysWhichKeyWon(t *testing.T) {
	held := &holdCounter{}
	w := newWorldConfig(t, emulator.Config{Logger: held})
	a, b := w.rotator(), w.machine("b")
	b.Secrets, b.SettleDelay = brokenKeyring{}, 300*time.Millisecond
	if err := w.Srv.ArmHold(emulator.Hold{Method: "POST", Path: "/v1/api-keys"}); err != nil {
		t.Fatal(err)
	}
	opts := fastOpts(w)
	// Write-only, so b cannot read a's key back; exec-ab: since with exec:
	// alone, a machine without a keyring is refused before it creates.
	opts.Targets = []string{"exec-ab:cat >/dev/null"}
	opts.NoWait = true
	done := make(chan error, 1)
	go func() { _, err := b.Rotate(context.Background(), w.Old, opts); done <- err }()
	rotatetest.Eventually(t, "b's create to be held", func() bool { return held.count() == 1 })
	// a creates first, and keeps its plaintext in its keyring.
	won, err := a.Create(context.Background(), w.Old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Srv.ReleaseHolds()
	err = <-done
	if !errors.Is(err, ErrPending) {
		t.Fatalf("b: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "only in this run's memory") {
		t.Errorf("b says the winner's key was its own: %s", msg)
	}
	var mine string
	for _, k := range w.successors(client.StatusRevoked) {
		mine = k.Prefix
	}
	for _, want := range []string{won.New.Prefix + " won the race (created first); this machine revoked its own successor " + mine + " before deploying it", "created by ana@example.com"} {
		if mine == "" || !strings.Contains(msg, want) {
			t.Errorf("b's error does not say %q: %s", want, msg)
		}
	}
}
