package fleet

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
)

func TestRotateIssuedBy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ben, _ := w.Srv.CreateUser(ctx, "ben@example.com", "member", []string{"orders:write"})
	var bens []client.APIKey
	for _, name := range []string{"Webhook relay", "Orders export (2025)"} {
		_, k, err := w.Srv.MintKey(ctx, ben.ID, name, []string{"orders:write"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		bens = append(bens, k)
	}
	res, err := departed(t, w.rotator(), "BEN@example.com", Options{Options: rotate.Options{Emergency: rotate.ReasonDeparted, NoWait: true}})
	if !errors.Is(err, rotate.ErrPending) || res.Pending != 2 || res.Failed != 0 {
		t.Fatalf("want both pending on first use, got %v %+v", err, res)
	}
	for _, k := range bens {
		if w.Key(k.ID).Active() {
			t.Errorf("%s still active", k.Name)
		}
	}
	if !w.Key(w.Old.ID).Active() {
		t.Error("a key issued by someone else was revoked")
	}
	// The automations pick up their new keys; a second run finishes.
	for _, it := range res.Items {
		p, _ := w.Store.Get(secret.KeyName(it.Result.New.ID))
		if err := w.Call("relay/2", p); err != nil {
			t.Fatal(err)
		}
	}
	gated, err := RotateIssuedBy(ctx, w.rotator(), "ben@example.com", Options{Options: rotate.Options{NoWait: true}})
	if err != nil || gated.Done != 2 {
		t.Fatalf("resume: %v %+v", err, gated)
	}
}

// flakySet fails the Nth Set of a key's plaintext (not of the probe or the
// rotation log's key), as a keyring that locks itself halfway through a
// bulk run would.
type flakySet struct {
	secret.Store
	n, failOn atomic.Int32
}

func (s *flakySet) Set(name, value string) error {
	if strings.HasPrefix(name, "key:") && s.n.Add(1) == s.failOn.Load() {
		return errors.New("keyring locked")
	}
	return s.Store.Set(name, value)
}

func TestRotateIssuedByContinuesPastAFailedKey(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ben, _ := w.Srv.CreateUser(ctx, "ben@example.com", "member", []string{"orders:write"})
	var bens []client.APIKey
	for i, name := range []string{"Webhook relay", "Orders export (2025)", "Invoice mailer"} {
		_, k, err := w.Srv.MintKey(ctx, ben.ID, name, []string{"orders:write"}, time.Now().Add(time.Duration(i-10)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		bens = append(bens, k)
	}
	store := &flakySet{Store: w.Store}
	store.failOn.Store(2)
	rot := w.rotator()
	rot.Secrets = store
	res, err := departed(t, rot, "ben@example.com", Options{Options: rotate.Options{Emergency: rotate.ReasonDeparted, NoWait: true}})
	if err == nil || errors.Is(err, rotate.ErrPending) {
		t.Fatalf("a failed key must fail the run, got %v", err)
	}
	if res.Failed != 1 || res.Pending != 2 || len(res.Items) != 3 {
		t.Fatalf("want 1 failed, 2 pending of 3, got %+v", res)
	}
	if got := res.Items[0].State + "," + res.Items[1].State + "," + res.Items[2].State; got != "waiting,failed,waiting" {
		t.Errorf("states %s", got)
	}
	if res.Items[1].Old.ID != bens[1].ID || res.Items[1].Error == "" {
		t.Fatalf("the second key is the one that failed: %+v", res.Items[1])
	}
	// The run went on past the failure: the third key has its successor.
	if res.Items[2].Result == nil || res.Items[2].Result.New == nil {
		t.Fatalf("the key after the failure was not rotated: %+v", res.Items[2])
	}
	// Its successor could not be stored, so it was revoked, and the old key
	// stays active: the emergency order is create, store, then revoke.
	if !w.Key(bens[1].ID).Active() {
		t.Error("the failed key's old key was revoked without a stored successor")
	}
	for _, k := range w.Keys(client.StatusActive) {
		if k.ID != bens[1].ID && lineage.IsSuccessorName(bens[1].Name, k.Name) {
			if _, err := w.Store.Get(secret.KeyName(k.ID)); err != nil {
				t.Errorf("orphan %s: active, plaintext not in the keyring", k.Prefix)
			}
		}
	}
	es, err := w.rotator().Log().Entries()
	if err != nil {
		t.Fatal(err)
	}
	var emergencies int
	for _, e := range es {
		if e.Reason == rotate.ReasonDeparted {
			emergencies++
		}
	}
	if emergencies == 0 {
		t.Error("the rotation log has no entry with the reason departed")
	}

	// The same command again retries the failed key and leaves the others.
	res, err = departed(t, w.rotator(), "ben@example.com", Options{Options: rotate.Options{Emergency: rotate.ReasonDeparted, NoWait: true}})
	if res == nil || res.Failed != 0 {
		t.Fatalf("retry: %v %+v", err, res)
	}
	var active int
	for _, k := range w.Keys(client.StatusActive) {
		if k.ID != bens[1].ID && lineage.IsSuccessorName(bens[1].Name, k.Name) {
			active++
		}
	}
	if active != 1 {
		t.Errorf("the failed key has %d active successors after the retry, want 1", active)
	}
	if w.Key(bens[1].ID).Active() {
		t.Error("the retry left the departed engineer's key active")
	}
}

func TestRotateIssuedByDryRunChangesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ben, _ := w.Srv.CreateUser(ctx, "ben@example.com", "member", []string{"orders:write"})
	for _, name := range []string{"Webhook relay", "Orders export (2025)"} {
		if _, _, err := w.Srv.MintKey(ctx, ben.ID, name, []string{"orders:write"}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(w.Keys(client.StatusActive))
	res, err := departed(t, w.rotator(), "ben@example.com", Options{Options: rotate.Options{Emergency: rotate.ReasonDeparted, DryRun: true}})
	if err != nil || res.Planned != 2 || res.Done != 0 || res.Items[0].State != "planned" || len(res.Items[0].Result.Plan) == 0 {
		t.Fatalf("dry run: %v %+v", err, res)
	}
	if after := len(w.Keys(client.StatusActive)); after != before {
		t.Errorf("a dry run changed the active keys: %d, then %d", before, after)
	}
}

// --issued-by with one env file or stdout for every successor is refused
// before anything is done: each successor would overwrite the last.
func TestIssuedByRefusesOneSharedTarget(t *testing.T) {
	for _, target := range []string{"env-file:ENV", "stdout"} {
		t.Run(target, func(t *testing.T) {
			w := newWorld(t)
			w.mintOld("Second sync (2025)")
			before := len(w.Keys(client.StatusAll))
			opts := fastOpts(w)
			opts.Targets, opts.NoWait = []string{strings.Replace(target, "ENV", w.EnvPath, 1)}, true
			_, err := RotateIssuedBy(context.Background(), w.rotator(), "ana@example.com", Options{Options: opts})
			if !errors.Is(err, rotate.ErrUsage) || !strings.Contains(err.Error(), "rotation.targets") {
				t.Fatalf("want a usage error pointing at rotation.targets, got %v", err)
			}
			if n := len(w.Keys(client.StatusAll)); n != before {
				t.Errorf("%d keys were created", n-before)
			}
			if !w.Key(w.Old.ID).Active() {
				t.Error("a key was revoked")
			}
		})
	}
}

// Issue 19 (G18): a key that is the successor of a rotation under way is
// not rotated itself (the automation would end holding the grandparent
// and the grandchild): that rotation is carried on instead.
func TestIssuedByCarriesARotationUnderWayOn(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ben, _ := w.Srv.CreateUser(ctx, "ben@example.com", "member", []string{client.ScopeManage, "orders:write"})
	_, relay, err := w.Srv.MintKey(ctx, ben.ID, "Webhook relay", []string{"orders:write"}, w.Srv.Now().Add(-400*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Ben started its rotation on his laptop: the successor is on the server.
	mgmt, _, err := w.Srv.MintKey(ctx, ben.ID, "ben's plana", []string{client.ScopeManage, "orders:write"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	succ, err := w.ClientFor("plana-test", mgmt).CreateKey(ctx, client.CreateKeyRequest{Name: "Webhook relay (2026)", Scopes: []string{"orders:write"},
		Description: lineage.Claim{OldPrefix: relay.Prefix, OldName: relay.Name, By: ben.Email, On: w.Srv.Now(), Host: "ben-laptop", Reason: "scheduled"}.Description()}, "bens-create")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := IssuedBy(ctx, w.rotator(), "ben@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range plan {
		names = append(names, k.Name)
	}
	if strings.Join(names, ",") != "Webhook relay,ben's plana" {
		t.Fatalf("plan %v: want the relay's rotation carried on, not its successor rotated", names)
	}
	// The gated procedure needs a target for each key.
	every := rotate.Policy{Rules: []rotate.Rule{{Match: "*", Targets: []string{"exec:cat >/dev/null"}}}}
	res, err := RotateIssuedBy(ctx, w.rotator(), "ben@example.com", Options{Options: rotate.Options{Reason: rotate.ReasonDeparted, NoWait: true, Policy: every}})
	if res == nil || len(res.Items) != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	if it := res.Items[0]; it.Old.ID != relay.ID || it.Result == nil || it.Result.New == nil || it.Result.New.ID != succ.APIKey.ID {
		t.Fatalf("the relay's rotation did not carry on with ben's successor: %+v", it)
	}
	for _, k := range w.Keys(client.StatusAll) {
		if lineage.IsSuccessorName(succ.APIKey.Name, k.Name) && k.Name != succ.APIKey.Name {
			t.Errorf("a successor of the successor was created: %s (%s)", k.Name, k.Prefix)
		}
	}
}
