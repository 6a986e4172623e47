package fleet

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/target"
)

// IssuedBy lists the keys a person issued that RotateIssuedBy rotates:
// every active one but the management key plana is using, plus those whose
// rotation is unfinished, so running it again resumes. Oldest first. A key
// that is the successor of a rotation under way (its old key still active)
// is not rotated itself, which would leave the automation holding the
// grandparent and the grandchild: that rotation is carried on instead, by
// rotating its old key, whoever issued it.
func IssuedBy(ctx context.Context, r *rotate.Rotator, email string) ([]client.APIKey, error) {
	run, err := start(ctx, r)
	if err != nil {
		return nil, err
	}
	return run.issuedBy(email), nil
}

// issuedBy is IssuedBy, on what run read.
func (run *fleetRun) issuedBy(email string) []client.APIKey {
	r, keys, me := run.r, run.keys, run.r.Who
	byID := map[string]client.APIKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	family := lineage.NewFamily(keys, me.User)
	var plan []client.APIKey
	planned := map[string]bool{}
	add := func(k client.APIKey) {
		if !planned[k.ID] {
			planned[k.ID] = true
			plan = append(plan, k)
		}
	}
	for _, k := range keys {
		if !k.Active() || !strings.EqualFold(k.CreatedBy.Email, email) {
			continue
		}
		if p, ok := family.Predecessor(k.ID); ok && byID[p.ID].Active() {
			old := byID[p.ID]
			reporter(r).Info(fmt.Sprintf("%s (%s) is the successor of %s (%s), whose rotation is under way: carrying that rotation on instead", k.Name, k.Prefix, old.Name, old.Prefix))
			k = old
		}
		if k.ID == me.Key.ID {
			reporter(r).Warn(fmt.Sprintf("skipping %s (%s): it is the management key plana is using; replace it with plana auth login, then revoke it", k.Name, k.Prefix))
			continue
		}
		add(k)
	}
	js, damaged := rotate.Unfinished(r.StateDir)
	for _, err := range damaged {
		reporter(r).Warn(err.Error())
	}
	for _, j := range js {
		if strings.EqualFold(j.OldCreatedBy, email) && !byID[j.Old.ID].Active() {
			if k, ok := byID[j.Old.ID]; ok {
				add(k)
			}
		}
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].CreatedAt.Before(plan[j].CreatedAt) })
	return plan
}

// RotateIssuedBy offboards a person (email) without downtime: every key
// they issued (IssuedBy) goes through the gated procedure with its own
// settings, and then every key needs a target: one without refuses the run
// before anything is done. It goes on past a failed key and returns an
// error when any failed (or rotate.ErrPending when some wait). An
// emergency is Departed's plan, carried out by RunIncident.
func RotateIssuedBy(ctx context.Context, r *rotate.Rotator, email string, o Options) (*Result, error) {
	if o.Emergency != "" {
		return nil, &rotate.UsageError{Msg: "an emergency for a person who left runs Departed's plan through RunIncident"}
	}
	run, err := start(ctx, r)
	if err != nil {
		return nil, err
	}
	keys := run.issuedBy(email)
	rep := reporter(r)
	if len(keys) == 0 {
		rep.Info("no active key issued by " + email)
		return &Result{}, nil
	}
	if err := CheckSharedTargets(o.Targets, len(keys)); err != nil {
		return nil, err
	}
	jobs, err := plan(r, keys, o.Options)
	if err != nil {
		return nil, err
	}
	var none []string
	for _, j := range jobs {
		if j.Skip != "" {
			none = append(none, fmt.Sprintf("%s (%s)", j.Key.Name, j.Key.Prefix))
		}
	}
	if len(none) > 0 {
		return nil, &rotate.UsageError{Msg: fmt.Sprintf("%d of the %d keys issued by %s have no deploy target: %s.\n"+
			"Give each one in the profile's rotation.targets (match: GLOB, to: [TARGET, ...]) for the gated procedure, or revoke them first with --emergency departed",
			len(none), len(keys), email, strings.Join(none, ", "))}
	}
	if o.Reason == "" {
		o.Reason = rotate.ReasonDeparted
	}
	rep.Info(fmt.Sprintf("rotating %d keys issued by %s (%s, gated):", len(keys), email, o.Reason))
	for _, k := range keys {
		rep.Info(fmt.Sprintf("  %s (%s)", k.Name, k.Prefix))
	}
	return run.rotateJobs(ctx, jobs, o)
}

// CheckSharedTargets refuses one command-line target for many keys when it
// is an env file, a secret store or stdout: every successor would
// overwrite the one PLANA_KEY_NEW, and all but the last automation would
// lose its key. An exec: command learns each key's name and can keep them
// apart.
func CheckSharedTargets(targets []string, keys int) error {
	if keys < 2 {
		return nil
	}
	for _, s := range targets {
		t, err := target.Parse(s)
		if err != nil {
			return err
		}
		if t.Kind != target.KindExec && t.Kind != target.KindExecAB {
			return &rotate.UsageError{Msg: fmt.Sprintf("--to %s would receive the successors of %d keys: every successor would overwrite the last; nothing was done. "+
				"Give each key its own target in the profile's rotation.targets (plana help config), or rotate the keys one at a time: plana keys rotate KEY --to %s", t, keys, t)}
		}
	}
	return nil
}

// Departed plans the emergency for a person who left (email): every active
// key they issued, rotated at once, each to its targets; the rotations under
// way whose successor they issued, and that successor revoked after them;
// and their management keys with no target revoked last. Rotations of
// theirs under way in this state directory are carried on.
func Departed(ctx context.Context, r *rotate.Rotator, email string, o rotate.Options) (*Plan, error) {
	b, err := newBuilder(ctx, r, rotate.ReasonDeparted, "issued by "+email)
	if err != nil {
		return nil, err
	}
	issued := "issued by " + email
	for _, k := range b.keys {
		if k.Active() && strings.EqualFold(k.CreatedBy.Email, email) {
			b.concern(k, issued)
		}
	}
	b.resume(r, func(j *rotate.Journal) bool { return strings.EqualFold(j.OldCreatedBy, email) })
	return b.finish(r, o), nil
}
