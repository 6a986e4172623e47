package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

// An incident (a lost machine, a departed engineer) concerns a set of keys,
// and its emergency does one of three things with each. A key in service
// is rotated: its old key revoked at once, a new one deployed to its
// targets. A key no rotation keeps (the successor of a rotation under way,
// which the emergency replaces with a key of its own, or one an emergency
// passed over already) is revoked, once the rotation that replaces it has
// revoked its old key. A management key with no target is revoked, not
// rotated (its successor would only sit in this machine's keyring), and
// last: the management key this run uses is never among them, and the
// others are the most dangerous keys, so a person confirms them.

// PlanKey is one key of an incident's plan, and why it is there.
type PlanKey struct {
	Key client.APIKey `json:"key"`
	Why string        `json:"why"`
	// After is the rotation that replaces this key: it is revoked only once
	// that rotation has revoked its old key and deployed the new one.
	After *ref.Key `json:"after,omitempty"`
	// Next is what a person does instead (the key this run uses).
	Next string `json:"next,omitempty"`
}

// Plan is what an emergency about a machine or a person does.
type Plan struct {
	Reason string `json:"reason"`
	// About says whose keys: "stored on laptop-1", "issued by ben@example.com".
	About string `json:"about"`
	// Rotate are rotated in an emergency, each to its targets; oldest first.
	Rotate []PlanKey `json:"rotate"`
	// RevokeAfter are revoked once the rotations have revoked their old
	// keys: keys that no rotation keeps.
	RevokeAfter []PlanKey `json:"revoke_after"`
	// RevokeLast are the management keys to revoke, after a confirmation.
	RevokeLast []PlanKey `json:"revoke_last"`
	// InUse is the management key this run uses, when the incident
	// concerns it: skipped, and Next says what replaces it.
	InUse *PlanKey `json:"in_use,omitempty"`
	// Unplaced are the active keys a machine's incident cannot place:
	// created outside plana, or with a lineage that names no machine or
	// is not trusted. A person decides about them.
	Unplaced []PlanKey `json:"unplaced,omitempty"`
	// Elsewhere counts the active keys whose lineage names another machine.
	Elsewhere int `json:"elsewhere,omitempty"`
	// Window is the stretch of the execution log read for the management
	// keys a machine used.
	Window *Window `json:"management_window,omitempty"`
}

// Revocation is how a revoke of an incident went.
type Revocation struct {
	Key        ref.Key `json:"key"`
	Management bool    `json:"management"`
	State      State   `json:"state"` // done, failed, skipped (with why in Error), planned
	Error      string  `json:"error,omitempty"`
}

// IncidentResult is a Plan carried out: the rotations' Result, and each
// revoke.
type IncidentResult struct {
	*Result
	Plan        *Plan        `json:"plan"`
	Revocations []Revocation `json:"revocations"`
}

// Err is the run's outcome: an error when a rotation or a revoke failed,
// rotate.ErrPending while a rotation waits, nil otherwise. A revoke left
// to a person (not confirmed, its rotation not there yet) is no failure.
func (x *IncidentResult) Err() error {
	failed := 0
	for _, rv := range x.Revocations {
		if rv.State == Failed {
			failed++
		}
	}
	err := x.Result.Err()
	switch {
	case failed == 0:
		return err
	case err != nil && !errors.Is(err, rotate.ErrPending):
		return fmt.Errorf("%w; and %d of %d revokes failed", err, failed, len(x.Revocations))
	}
	return fmt.Errorf("%d of %d revokes failed; run the same command again to retry them", failed, len(x.Revocations))
}

// builder sorts the keys an incident concerns into a Plan.
type builder struct {
	plan   *Plan
	me     *client.Me
	keys   []client.APIKey
	byID   map[string]client.APIKey
	family *lineage.Family
	seen   map[string]bool
}

func newBuilder(ctx context.Context, r *rotate.Rotator, reason, about string) (*builder, error) {
	me, err := r.API.Me(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := r.API.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: pageSize})
	if err != nil {
		return nil, err
	}
	b := &builder{plan: &Plan{Reason: reason, About: about}, me: me, keys: keys, byID: map[string]client.APIKey{},
		family: lineage.NewFamily(keys, me.User), seen: map[string]bool{}}
	for _, k := range keys {
		b.byID[k.ID] = k
	}
	return b, nil
}

func (b *builder) rotate(k client.APIKey, why string) {
	if !b.seen[k.ID] {
		b.seen[k.ID] = true
		b.plan.Rotate = append(b.plan.Rotate, PlanKey{Key: k, Why: why})
	}
}

func (b *builder) revoke(k client.APIKey, after *client.APIKey, why string) {
	if b.seen[k.ID] {
		return
	}
	b.seen[k.ID] = true
	p := PlanKey{Key: k, Why: why}
	if after != nil {
		r := ref.Of(*after)
		p.After = &r
	}
	b.plan.RevokeAfter = append(b.plan.RevokeAfter, p)
}

// concern plans the emergency's answer to k, an active key the incident
// concerns (why). A key in service is rotated. The successor of a rotation
// under way is not: an emergency carries no successor on, so the rotation
// of its old key is what the emergency runs, and the successor is revoked
// after it. A successor an emergency already passed over is revoked.
func (b *builder) concern(k client.APIKey, why string) {
	p, ok := b.family.Predecessor(k.ID)
	old, known := b.byID[p.ID]
	if !ok || !known {
		b.rotate(k, why)
		return
	}
	if old.Active() {
		b.rotate(old, fmt.Sprintf("its rotation is under way to %s, which is %s", label(k), why))
		b.revoke(k, &old, fmt.Sprintf("%s; the successor of the rotation of %s under way, which the emergency replaces with a key of its own", why, label(old)))
		return
	}
	if kept, found := b.family.Kept(old.ID); found && kept.ID != k.ID {
		b.revoke(k, nil, fmt.Sprintf("%s; %s was replaced by %s, not by this key: nothing should use it", why, label(old), label(kept)))
		return
	}
	b.rotate(k, why)
}

// resume plans the rotations under way in this state directory that
// belong to the incident (it says which): their old keys are revoked
// already, and running the same command again carries them on.
func (b *builder) resume(r *rotate.Rotator, belongs func(*rotate.Journal) bool) {
	js, damaged := rotate.Unfinished(r.StateDir)
	for _, err := range damaged {
		reporter(r).Warn(err.Error())
	}
	for _, j := range js {
		if old, ok := b.byID[j.Old.ID]; ok && !old.Active() && belongs(j) {
			b.rotate(old, "its rotation is unfinished: carried on")
		}
	}
}

// finish makes the plan for a run with o: the management key this run
// uses is taken out; management keys that have no target are revoked, not
// rotated, and last; a revoke waits only for a rotation the plan runs.
func (b *builder) finish(r *rotate.Rotator, o rotate.Options) *Plan {
	p := b.plan
	targets := func(k client.APIKey) []string {
		// A setting refused here (a flag against what a rotation under way
		// recorded) refuses the whole run when it starts, saying why.
		set, _ := r.Settings(k, o)
		return set.Targets
	}
	me := b.me.Key
	for _, list := range []*[]PlanKey{&p.Rotate, &p.RevokeAfter} {
		if i := slices.IndexFunc(*list, func(x PlanKey) bool { return x.Key.ID == me.ID }); i >= 0 {
			x := (*list)[i]
			x.After = nil
			x.Next = fmt.Sprintf("it is the management key this run uses, and revoking it would cut the run off: "+
				"run plana auth login with a new management key (on a machine you keep), then plana keys revoke %s --force --yes", me.ID)
			p.InUse = &x
			*list = slices.Delete(*list, i, i+1)
		}
	}
	// Empty lists, never null: -o json is a contract with scripts.
	rot, after, last := []PlanKey{}, []PlanKey{}, []PlanKey{}
	for _, x := range p.Rotate {
		if isManagement(x.Key) && x.Key.Active() && len(targets(x.Key)) == 0 {
			x.Why += "; a management key with no target in rotation.targets: revoked, not rotated"
			last = append(last, x)
			continue
		}
		rot = append(rot, x)
	}
	for _, x := range p.RevokeAfter {
		if isManagement(x.Key) {
			last = append(last, x)
			continue
		}
		after = append(after, x)
	}
	p.Rotate, p.RevokeAfter, p.RevokeLast = rot, after, last
	rotating := map[string]bool{}
	for _, x := range p.Rotate {
		rotating[x.Key.ID] = true
	}
	for _, list := range [][]PlanKey{p.RevokeAfter, p.RevokeLast} {
		for i := range list {
			if list[i].After != nil && !rotating[list[i].After.ID] {
				list[i].After = nil
			}
		}
	}
	byAge := func(a, b PlanKey) int {
		return cmp.Or(a.Key.CreatedAt.Compare(b.Key.CreatedAt), strings.Compare(a.Key.ID, b.Key.ID))
	}
	for _, list := range [][]PlanKey{p.Rotate, p.RevokeAfter, p.RevokeLast, p.Unplaced} {
		slices.SortStableFunc(list, byAge)
	}
	return p
}

func isManagement(k client.APIKey) bool { return slices.Contains(k.Scopes, client.ScopeManage) }

func label(k client.APIKey) string { return fmt.Sprintf("%s (%s)", k.Name, k.Prefix) }

// RunIncident carries p out with o: each key of Rotate rotated in an
// emergency (o.Emergency, else p.Reason), to its targets from o.Policy;
// then RevokeAfter revoked, then, when revokeLast (a person confirmed),
// RevokeLast. The revokes do not wait for any automation to take its new
// key: when there are revokes, the rotations first run to their deploy,
// and those still waiting for their new key in use are carried on after
// the revokes (unless o.NoWait). A dry run changes nothing and lists each
// revoke as planned.
func RunIncident(ctx context.Context, r *rotate.Rotator, p *Plan, o Options, revokeLast bool) (*IncidentResult, error) {
	out := &IncidentResult{Result: &Result{Items: []Item{}}, Plan: p, Revocations: []Revocation{}}
	keys := make([]client.APIKey, len(p.Rotate))
	for i, x := range p.Rotate {
		keys[i] = x.Key
	}
	if o.Emergency == "" {
		o.Emergency = p.Reason
	}
	reason := cmp.Or(o.Reason, o.Emergency)
	revokes := len(p.RevokeAfter) > 0 || revokeLast && len(p.RevokeLast) > 0
	first := o
	if revokes && !o.DryRun {
		first.NoWait = true
	}
	if len(keys) > 0 {
		res, err := Rotate(ctx, r, keys, first)
		out.Result = res
		if ctx.Err() != nil {
			return out, err
		}
	}
	if o.DryRun {
		for _, x := range p.RevokeAfter {
			out.Revocations = append(out.Revocations, Revocation{Key: ref.Of(x.Key), State: Planned})
		}
		for _, x := range p.RevokeLast {
			out.Revocations = append(out.Revocations, Revocation{Key: ref.Of(x.Key), Management: true, State: Planned})
		}
		return out, out.Err()
	}
	out.revoke(ctx, r, p.RevokeAfter, false, reason)
	if revokeLast {
		out.revoke(ctx, r, p.RevokeLast, true, reason)
	} else {
		for _, x := range p.RevokeLast {
			out.Revocations = append(out.Revocations, Revocation{Key: ref.Of(x.Key), Management: true, State: Skipped,
				Error: "not confirmed: revoke it with plana keys revoke " + x.Key.ID + " --force --yes"})
		}
	}
	if revokes && !o.NoWait && out.Pending > 0 && ctx.Err() == nil {
		out.carryOn(ctx, r, keys, o)
	}
	return out, out.Err()
}

// revoke revokes each of list in turn, as plana keys revoke ID --force
// would, once the rotation it waits for (After) has revoked its old key.
func (x *IncidentResult) revoke(ctx context.Context, r *rotate.Rotator, list []PlanKey, management bool, reason string) {
	if len(list) == 0 {
		return
	}
	rep := reporter(r)
	what := "the keys no rotation keeps"
	if management {
		what = "the management keys, last"
	}
	rep.Step(fmt.Sprintf("Revoking %s (%s)", what, reason))
	for _, p := range list {
		rv := Revocation{Key: ref.Of(p.Key), Management: management}
		if p.After != nil {
			i := slices.IndexFunc(x.Items, func(it Item) bool { return it.Old.ID == p.After.ID })
			if i < 0 || (x.Items[i].State != Done && x.Items[i].State != Waiting) {
				rv.State = Skipped
				rv.Error = fmt.Sprintf("the rotation of %s (%s) did not revoke its old key: once plana keys rotate %s has, revoke this one with plana keys revoke %s --force --yes",
					p.After.Name, p.After.Prefix, p.After.ID, p.Key.ID)
				rep.Warn(fmt.Sprintf("not revoking %s: %s", label(p.Key), rv.Error))
				x.Revocations = append(x.Revocations, rv)
				continue
			}
		}
		rv.State = Done
		if _, err := r.Revoke(ctx, p.Key, rotate.Options{Force: true, Yes: true, Reason: reason}); err != nil {
			rv.State, rv.Error = Failed, client.Redact(err.Error())
			rep.Warn(fmt.Sprintf("revoking %s: %s", label(p.Key), rv.Error))
		}
		x.Revocations = append(x.Revocations, rv)
	}
}

// carryOn runs the rotations still waiting for their new key in use again,
// with o's wait, and takes their outcomes into x.
func (x *IncidentResult) carryOn(ctx context.Context, r *rotate.Rotator, keys []client.APIKey, o Options) {
	waiting := map[string]bool{}
	for _, it := range x.Items {
		if it.State == Waiting {
			waiting[it.Old.ID] = true
		}
	}
	var again []client.APIKey
	for _, k := range keys {
		if waiting[k.ID] {
			again = append(again, k)
		}
	}
	reporter(r).Step(fmt.Sprintf("Waiting for the new keys in use (%d)", len(again)))
	res, _ := Rotate(ctx, r, again, o)
	for _, it := range res.Items {
		if i := slices.IndexFunc(x.Items, func(o Item) bool { return o.Old.ID == it.Old.ID }); i >= 0 {
			x.Items[i] = it
		}
	}
	x.Result.tally()
}
