package fleet

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
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
)

// departed runs the emergency for a person who left, as keys rotate
// --issued-by EMAIL --emergency departed --yes does.
func departed(t *testing.T, r *rotate.Rotator, email string, o Options) (*IncidentResult, error) {
	t.Helper()
	p, err := Departed(context.Background(), r, email, o.Options)
	if err != nil {
		t.Fatal(err)
	}
	return RunIncident(context.Background(), r, p, o, true)
}

// machine is another machine's rotator: a state directory and a keyring of
// its own, and its name.
func (w *world) machine(name string) *rotate.Rotator {
	r := w.rotator()
	r.StateDir, r.Secrets, r.MachineName = w.T.TempDir(), secret.NewMemory(), name
	return r
}

func (w *world) mint(t *testing.T, user client.User, name string, scopes ...string) (string, client.APIKey) {
	t.Helper()
	plain, k, err := w.Srv.MintKey(context.Background(), user.ID, name, scopes, w.Srv.Now().Add(-400*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return plain, k
}

// useFrom makes one call with key, as plana on a machine would.
func (w *world) useFrom(t *testing.T, ua, key string) {
	t.Helper()
	if _, err := w.ClientFor(ua, key).Me(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func ids(list []PlanKey) []string {
	var out []string
	for _, x := range list {
		out = append(out, x.Key.Name)
	}
	return out
}

func whyOf(list []PlanKey, id string) (string, bool) {
	i := slices.IndexFunc(list, func(x PlanKey) bool { return x.Key.ID == id })
	if i < 0 {
		return "", false
	}
	return list[i].Why, true
}

// Two machines rotate keys; laptop-1 is lost. StoredOn plans exactly the
// keys its trusted lineage places there, the rotation under way whose
// successor is there, and the management key plana used there; the key
// this run uses is skipped; the rest is listed as unplaced, or counted as
// elsewhere. The run revokes the management key after the rotations'
// revokes, and the same command again carries the rotations on.
func TestStoredOnPlansTheMachinesKeys(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	me, err := w.API.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ana := me.User
	_, orders := w.mint(t, ana, "Orders feed", "orders:write")
	_, prices := w.mint(t, ana, "Price export", "stock:read")
	_, relay := w.mint(t, ana, "Webhook relay", "orders:write")
	laptop := w.machine("laptop-1")
	emergency := rotate.Options{Emergency: rotate.ReasonCompromise, NoWait: true}
	res, err := laptop.Rotate(ctx, orders, emergency)
	if !errors.Is(err, rotate.ErrPending) {
		t.Fatal(err)
	}
	ordersNew := res.New
	// A rotation under way: its successor's plaintext is on laptop-1.
	res, err = laptop.Rotate(ctx, prices, rotate.Options{NoWait: true, QuietPeriod: time.Hour})
	if !errors.Is(err, rotate.ErrPending) {
		t.Fatal(err)
	}
	pricesNew := res.New
	res, err = w.machine("laptop-2").Rotate(ctx, relay, emergency)
	if !errors.Is(err, rotate.ErrPending) {
		t.Fatal(err)
	}
	relayNew := res.New
	// A successor from before plana named machines.
	_, legacy := w.mint(t, ana, "Legacy import", "stock:write")
	old, err := w.API.CreateKey(ctx, client.CreateKeyRequest{Name: "Legacy import (2026)", Scopes: []string{"stock:write"},
		Description: lineage.Claim{OldPrefix: legacy.Prefix, OldName: legacy.Name, By: ana.Email, On: w.Srv.Now(), Reason: "scheduled"}.Description()}, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	// A member's forgery naming laptop-1.
	ben, _ := w.Srv.CreateUser(ctx, "ben@example.com", "member", []string{client.ScopeManage, "stock:read"})
	benPlain, benMgmt := w.mint(t, ben, "ben's plana", client.ScopeManage, "stock:read")
	forged, err := w.ClientFor("plana-test", benPlain).CreateKey(ctx, client.CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read"},
		Description: lineage.Claim{OldPrefix: w.Old.Prefix, OldName: w.Old.Name, By: ana.Email, On: w.Srv.Now(), Host: "laptop-1", Reason: "scheduled"}.Description()}, "forged")
	if err != nil {
		t.Fatal(err)
	}
	// Management keys: laptop-1's, laptop-2's, and the one this run uses,
	// which laptop-1 used too.
	m1Plain, m1 := w.mint(t, ana, "laptop-1 plana", client.ScopeManage)
	m2Plain, m2 := w.mint(t, ana, "laptop-2 plana", client.ScopeManage)
	w.useFrom(t, "plana/1.2.0 (linux; LAPTOP-1)", m1Plain)
	w.useFrom(t, "plana/1.2.0 (linux; laptop-2)", m2Plain)
	w.useFrom(t, "plana/1.2.0 (darwin; laptop-1)", w.Mgmt)
	w.useFrom(t, "curl/8.0 (laptop-1)", m2Plain)

	desk := w.rotator()
	desk.MachineName = "desk"
	plan, err := StoredOn(ctx, desk, "Laptop-1", rotate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(plan.Rotate); !slices.Equal(got, []string{prices.Name, ordersNew.Name}) {
		t.Errorf("rotate %v: want the rotation under way and laptop-1's successor", got)
	}
	if len(plan.RevokeAfter) != 1 || plan.RevokeAfter[0].Key.ID != pricesNew.ID || plan.RevokeAfter[0].After == nil || plan.RevokeAfter[0].After.ID != prices.ID {
		t.Errorf("revoke after %+v: want laptop-1's successor under way, after its rotation", plan.RevokeAfter)
	}
	if got := ids(plan.RevokeLast); !slices.Equal(got, []string{m1.Name}) {
		t.Errorf("revoke last %v: want laptop-1's management key", got)
	}
	if plan.InUse == nil || plan.InUse.Key.ID != me.Key.ID || !strings.Contains(plan.InUse.Next, "plana auth login") ||
		!strings.Contains(plan.InUse.Next, "plana keys revoke "+me.Key.ID+" --force --yes") {
		t.Errorf("in use %+v: want the run's own key skipped, with what replaces it", plan.InUse)
	}
	for _, want := range []struct {
		id, why string
	}{
		{forged.APIKey.ID, "its description names laptop-1, but is not trusted"},
		{w.Old.ID, "created outside plana"},
		{old.APIKey.ID, "its lineage names no machine"},
		{m2.ID, "a management key plana has not used on Laptop-1 in the last 90 days"},
		{benMgmt.ID, "created by ben@example.com (member)"},
	} {
		if why, ok := whyOf(plan.Unplaced, want.id); !ok || !strings.Contains(why, want.why) {
			t.Errorf("unplaced %s: %q, want %q", want.id, why, want.why)
		}
	}
	for _, id := range []string{relayNew.ID, ordersNew.ID, pricesNew.ID, m1.ID, me.Key.ID} {
		if _, ok := whyOf(plan.Unplaced, id); ok {
			t.Errorf("%s is listed as unplaced", id)
		}
	}
	if plan.Elsewhere != 1 {
		t.Errorf("elsewhere %d, want laptop-2's successor", plan.Elsewhere)
	}

	o := Options{Options: rotate.Options{Emergency: rotate.ReasonLostDevice, DryRun: true}}
	before := w.Keys(client.StatusActive)
	dry, err := RunIncident(ctx, desk, plan, o, true)
	if err != nil || dry.Planned != 2 || len(dry.Revocations) != 2 || dry.Revocations[1].State != Planned {
		t.Fatalf("dry run: %v %+v", err, dry)
	}
	if after := w.Keys(client.StatusActive); len(after) != len(before) {
		t.Fatalf("the dry run changed the active keys: %d, then %d", len(before), len(after))
	}

	o.DryRun, o.NoWait = false, true
	w.rep.Reset()
	out, err := RunIncident(ctx, desk, plan, o, true)
	if !errors.Is(err, rotate.ErrPending) || out.Failed != 0 {
		t.Fatalf("want the rotations waiting for their new keys in use: %v %+v", err, out)
	}
	for _, k := range []string{ordersNew.ID, prices.ID, pricesNew.ID, m1.ID} {
		if w.Key(k).Active() {
			t.Errorf("%s (%s) is still active", w.Key(k).Name, w.Key(k).Prefix)
		}
	}
	for _, k := range []string{relayNew.ID, forged.APIKey.ID, me.Key.ID, m2.ID, w.Old.ID} {
		if !w.Key(k).Active() {
			t.Errorf("%s (%s) was revoked", w.Key(k).Name, w.Key(k).Prefix)
		}
	}
	log := w.rep.Text()
	last := strings.LastIndex(log, "at once")
	if mgmt := strings.Index(log, "Revoking the management keys"); last < 0 || mgmt < last {
		t.Errorf("the management keys were not revoked after the rotations' revokes:\n%s", log)
	}

	// The same command again carries the rotations on, and revokes nothing.
	again, err := StoredOn(ctx, desk, "laptop-1", rotate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(again.Rotate); !slices.Equal(got, []string{prices.Name, ordersNew.Name}) || len(again.RevokeAfter)+len(again.RevokeLast) != 0 {
		t.Errorf("again: rotate %v, revoke %v %v", got, ids(again.RevokeAfter), ids(again.RevokeLast))
	}
}

// A successor on the lost machine that an emergency already passed over is
// revoked, not rotated: another key replaced its old key.
func TestStoredOnRevokesASuccessorPassedOver(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	res, err := w.machine("laptop-1").Rotate(ctx, w.Old, rotate.Options{NoWait: true, QuietPeriod: time.Hour})
	if !errors.Is(err, rotate.ErrPending) {
		t.Fatal(err)
	}
	under := res.New
	if _, err := w.machine("desk").Rotate(ctx, w.Old, rotate.Options{Emergency: rotate.ReasonCompromise, NoWait: true}); !errors.Is(err, rotate.ErrPending) {
		t.Fatal(err)
	}
	plan, err := StoredOn(ctx, w.rotator(), "laptop-1", rotate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Rotate) != 0 || len(plan.RevokeAfter) != 1 || plan.RevokeAfter[0].Key.ID != under.ID || plan.RevokeAfter[0].After != nil {
		t.Fatalf("rotate %v, revoke after %+v: want laptop-1's successor revoked", ids(plan.Rotate), plan.RevokeAfter)
	}
	if !strings.Contains(plan.RevokeAfter[0].Why, "not by this key") {
		t.Errorf("why: %s", plan.RevokeAfter[0].Why)
	}
}

// --issued-by --emergency departed covers the person's management keys:
// one with no target is revoked, last; one with a target is rotated; the
// one the run uses (a key they issued) is skipped, with what replaces it.
func TestDepartedRevokesManagementKeysLast(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ben, _ := w.Srv.CreateUser(ctx, "ben@example.com", "member", []string{client.ScopeManage, "orders:write"})
	_, relay := w.mint(t, ben, "Webhook relay", "orders:write")
	_, bm := w.mint(t, ben, "ben's plana", client.ScopeManage)
	ciPlain, ci := w.mint(t, ben, "ben's CI plana", client.ScopeManage, "orders:write")
	usePlain, inUse := w.mint(t, ben, "ben's desk plana", client.ScopeManage, "orders:write")
	ciEnv := filepath.Join(t.TempDir(), "ci.env")
	if err := os.WriteFile(ciEnv, []byte("PLANA_KEY="+ciPlain+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Options: rotate.Options{Emergency: rotate.ReasonDeparted, NoWait: true,
		Policy: rotate.Policy{Rules: []rotate.Rule{{Match: "ben's CI plana*", Targets: []string{"env-file:" + ciEnv}}}}}}
	r := w.rotator()
	r.API = w.ClientFor("plana-test", usePlain)
	plan, err := Departed(ctx, r, "ben@example.com", o.Options)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(plan.Rotate); !slices.Equal(got, []string{relay.Name, ci.Name}) {
		t.Errorf("rotate %v: want the relay and the management key with a target", got)
	}
	if got := ids(plan.RevokeLast); !slices.Equal(got, []string{bm.Name}) {
		t.Errorf("revoke last %v: want the management key with no target", got)
	}
	if plan.InUse == nil || plan.InUse.Key.ID != inUse.ID || !strings.Contains(plan.InUse.Next, "plana keys revoke "+inUse.ID) {
		t.Errorf("in use %+v", plan.InUse)
	}

	// Not confirmed: the management key stays, and the run says how to
	// revoke it.
	declined, err := RunIncident(ctx, r, &Plan{Reason: plan.Reason, RevokeLast: plan.RevokeLast}, o, false)
	if err != nil || len(declined.Revocations) != 1 || declined.Revocations[0].State != Skipped ||
		!strings.Contains(declined.Revocations[0].Error, "plana keys revoke "+bm.ID+" --force --yes") || !w.Key(bm.ID).Active() {
		t.Fatalf("declined: %v %+v", err, declined)
	}
	w.rep.Reset()
	res, err := RunIncident(ctx, r, plan, o, true)
	if !errors.Is(err, rotate.ErrPending) || res.Failed != 0 || len(res.Revocations) != 1 || res.Revocations[0].State != Done || !res.Revocations[0].Management {
		t.Fatalf("%v %+v", err, res)
	}
	for _, k := range []client.APIKey{relay, ci, bm} {
		if w.Key(k.ID).Active() {
			t.Errorf("%s is still active", k.Name)
		}
	}
	if !w.Key(inUse.ID).Active() {
		t.Error("the management key the run uses was revoked")
	}
	log := w.rep.Text()
	if last, mgmt := strings.LastIndex(log, "at once"), strings.Index(log, "Revoking the management keys"); last < 0 || mgmt < last {
		t.Errorf("the management key was not revoked last:\n%s", log)
	}
}

func TestPlanaHost(t *testing.T) {
	for ua, want := range map[string]string{
		"plana/1.2.0 (linux; ana-laptop)":   "ana-laptop",
		"plana/dev (darwin; Ana.Local_2)":   "Ana.Local_2",
		"plana/1.2.0 (linux)":               "",
		"plana/1.2.0":                       "",
		"plana-test":                        "",
		"curl/8.0 (linux; ana-laptop)":      "",
		"plana/1.2.0 (linux; ana laptop)":   "",
		"plana/1.2.0 (linux; a; b)":         "",
		"xplana/1.2.0 (linux; ana-laptop)":  "",
		"plana/1.2.0 (linux; ana-laptop) x": "",
	} {
		got, ok := PlanaHost(ua)
		if got != want || ok != (want != "") {
			t.Errorf("PlanaHost(%q) = %q, %v; want %q", ua, got, ok, want)
		}
	}
}
