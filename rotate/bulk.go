package rotate

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

// IssuedBy lists the keys a person issued that RotateIssuedBy rotates:
// every active one but the management key plana is using, plus those whose
// rotation is unfinished, so running it again resumes. Oldest first.
func (r *Rotator) IssuedBy(ctx context.Context, email string) ([]client.APIKey, error) {
	me, keys, err := r.meAndKeys(ctx, client.StatusAll)
	if err != nil {
		return nil, err
	}
	byID := map[string]client.APIKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	var plan []client.APIKey
	for _, k := range keys {
		if !k.Active() || !strings.EqualFold(k.CreatedBy.Email, email) {
			continue
		}
		if k.ID == me.Key.ID {
			r.rep().Warn(fmt.Sprintf("skipping %s (%s): it is the management key plana is using; replace it with plana auth login, then revoke it", k.Name, k.Prefix))
			continue
		}
		plan = append(plan, k)
	}
	js, _ := r.journals().all()
	for _, j := range js {
		if strings.EqualFold(j.OldCreatedBy, email) && !byID[j.Old.ID].Active() {
			if k, ok := byID[j.Old.ID]; ok {
				plan = append(plan, k)
			}
		}
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].CreatedAt.Before(plan[j].CreatedAt) })
	return plan, nil
}

// RotateIssuedBy rotates every key a person issued (IssuedBy): revoke-first
// with opts.Emergency (a departed engineer, a lost laptop), else the gated
// procedure with each key's own targets (opts.Policy). It goes on past a
// failed key and returns an error when any failed (or ErrPending when some
// wait).
func (r *Rotator) RotateIssuedBy(ctx context.Context, email string, opts Options) (*BulkResult, error) {
	plan, err := r.IssuedBy(ctx, email)
	if err != nil {
		return nil, err
	}
	if len(plan) == 0 {
		r.rep().Info("no active key issued by " + email)
		return &BulkResult{}, nil
	}
	if err := CheckSharedTargets(optsTargets(opts), len(plan)); err != nil {
		return nil, err
	}
	if opts.Reason == "" {
		opts.Reason = ReasonDeparted
	}
	how := opts.Emergency
	if how == "" {
		how = opts.Reason + ", gated"
	}
	r.rep().Info(fmt.Sprintf("rotating %d keys issued by %s (%s):", len(plan), email, how))
	for _, k := range plan {
		r.rep().Info(fmt.Sprintf("  %s (%s)", k.Name, k.Prefix))
	}
	return r.RotateFleet(ctx, plan, opts)
}

// Rebuild replaces a damaged journal with one derived from the server: the
// successor is the newest active key named like one, issued by the caller
// after the old key, whose plaintext is in the keyring; other such keys that
// plana alone has called are orphans and are revoked. The damaged file is
// kept next to it with a ".damaged" suffix.
func (r *Rotator) Rebuild(ctx context.Context, old client.APIKey, opts Options) (*Result, error) {
	if err := checkID(old.ID); err != nil {
		return nil, err
	}
	js := r.journals()
	lk, err := js.lock(old.ID)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	me, keys, err := r.meAndKeys(ctx, client.StatusActive)
	if err != nil {
		return nil, err
	}
	var cands []client.APIKey
	for _, k := range keys {
		if k.ID != old.ID && k.CreatedBy.ID == me.User.ID && !k.CreatedAt.Before(old.CreatedAt) && isSuccessorName(old.Name, k.Name) {
			cands = append(cands, k)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].CreatedAt.After(cands[j].CreatedAt) })
	// The targets are recorded as a run's are (see open): absolute, every
	// one given.
	targets, err := absTargets(optsTargets(opts))
	if err != nil {
		return nil, err
	}
	now, _ := r.API.ServerNow()
	j := &Journal{Old: RefOf(old), OldCreatedBy: old.CreatedBy.Email, Reason: ReasonScheduled,
		Actor: Actor{Email: me.User.Email, Local: r.localActor()}, StartedAt: now, UpdatedAt: now}
	j.setTargets(targets)
	for _, k := range cands {
		_, gerr := r.Secrets.Get(secret.KeyName(k.ID))
		if j.New == nil && gerr == nil {
			ref := RefOf(k)
			j.New, j.NewCreatedAt, j.PlaintextStored = &ref, k.CreatedAt, true
			// The key exists and answers by now; its own GET /v1/me calls
			// are plana's check and must not count as the automation's.
			if j.OwnCalls, err = r.ownCalls(ctx, k.ID); err != nil {
				return nil, err
			}
			j.advance(StepChecked, now)
			continue
		}
		used, err := r.usedByOthers(ctx, k.ID)
		if err != nil {
			return nil, err
		}
		if used {
			r.rep().Warn(fmt.Sprintf("%s (%s) looks like another successor and is in use: left alone; revoke it yourself if it is not needed", k.Name, k.Prefix))
			continue
		}
		if _, err := r.API.RevokeKey(ctx, k.ID); err != nil {
			return nil, fmt.Errorf("revoking the orphan %s: %w", k.Prefix, err)
		}
		j.Abandoned = append(j.Abandoned, RefOf(k))
		r.rep().Info(fmt.Sprintf("revoked the orphan %s (%s)", k.Name, k.Prefix))
	}
	p := js.path(old.ID)
	if fi, err := os.Stat(p); err == nil {
		if err := os.Rename(p, p+".damaged"); err != nil {
			return nil, err
		}
		// Kept as evidence, and private like every state file, whatever
		// mode the damage left it with.
		if fi.Mode().IsRegular() {
			if err := os.Chmod(p+".damaged", 0o600); err != nil {
				return nil, err
			}
		}
	}
	res := &Result{Old: j.Old, New: j.New, Step: j.Step, Journal: p}
	if j.New == nil {
		r.rep().Info("no successor found: the next plana keys rotate starts afresh")
		return res, nil
	}
	r.rep().Info(fmt.Sprintf("rebuilt the journal: successor %s (%s); run plana keys rotate %s to go on", j.New.Name, j.New.Prefix, old.ID))
	return res, js.save(j)
}

// usedByOthers reports whether anything but plana's own check (GET /v1/me)
// has called with key id.
func (r *Rotator) usedByOthers(ctx context.Context, id string) (bool, error) {
	own, all, err := r.callsOf(ctx, id)
	return len(own) < all, err
}

func (r *Rotator) ownCalls(ctx context.Context, id string) ([]string, error) {
	own, _, err := r.callsOf(ctx, id)
	return own, err
}

// callsOf returns the ids of key id's GET /v1/me calls and how many calls it
// made in all.
func (r *Rotator) callsOf(ctx context.Context, id string) (own []string, all int, err error) {
	err = r.API.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: id, PageSize: logPageSize}, func(es []client.ExecutionLogEntry) error {
		for _, e := range es {
			all++
			if e.Path == "/v1/me" {
				own = append(own, e.ID)
			}
		}
		return nil
	})
	return own, all, err
}

// meAndKeys is who the management key is, and the keys with status.
func (r *Rotator) meAndKeys(ctx context.Context, status string) (*client.Me, []client.APIKey, error) {
	me, err := r.API.Me(ctx)
	if err != nil {
		return nil, nil, err
	}
	keys, err := r.API.ListKeys(ctx, client.ListKeysOptions{Status: status, PageSize: logPageSize})
	return me, keys, err
}
