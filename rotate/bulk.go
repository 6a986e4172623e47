package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

// BulkItem is the outcome for one key of RotateIssuedBy.
type BulkItem struct {
	Old    KeyRef  `json:"old"`
	Result *Result `json:"result,omitempty"`
	// State is done, waiting (the gate is not met yet), failed, or planned
	// (a dry run).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// BulkResult sums up RotateIssuedBy.
type BulkResult struct {
	Items   []BulkItem `json:"items"`
	Done    int        `json:"done"`
	Pending int        `json:"pending"`
	Failed  int        `json:"failed"`
	Planned int        `json:"planned,omitempty"`
}

// RotateIssuedBy rotates, as an emergency, every active key issued by email
// (a departed engineer, a lost laptop), plus any such rotation left
// unfinished, so running it again resumes. It goes on past a failed key and
// returns an error when any failed (or ErrPending when some wait).
func (r *Rotator) RotateIssuedBy(ctx context.Context, email string, opts Options) (*BulkResult, error) {
	if opts.Emergency == "" {
		opts.Emergency = ReasonDeparted
	}
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
	if len(plan) == 0 {
		r.rep().Info("no active key issued by " + email)
		return &BulkResult{}, nil
	}
	r.rep().Info(fmt.Sprintf("rotating %d keys issued by %s (%s):", len(plan), email, opts.Emergency))
	for _, k := range plan {
		r.rep().Info(fmt.Sprintf("  %s (%s)", k.Name, k.Prefix))
	}
	res := &BulkResult{}
	for i, k := range plan {
		r.rep().Step(fmt.Sprintf("[%d/%d] %s (%s)", i+1, len(plan), k.Name, k.Prefix))
		out, err := r.Rotate(ctx, k, opts)
		it := BulkItem{Old: RefOf(k), Result: out, State: "done"}
		switch {
		case err == nil && out != nil && out.DryRun:
			res.Planned++
			it.State = "planned"
		case err == nil:
			res.Done++
		case errors.Is(err, ErrPending):
			res.Pending++
			it.State, it.Error = "waiting", err.Error()
		default:
			res.Failed++
			it.State, it.Error = "failed", err.Error()
			r.rep().Warn(fmt.Sprintf("%s: %v", k.Prefix, err))
		}
		res.Items = append(res.Items, it)
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case res.Failed > 0:
		return res, fmt.Errorf("%d of %d rotations failed; run the same command again to retry them", res.Failed, len(plan))
	case res.Pending > 0:
		return res, fmt.Errorf("%w: %d of %d rotations wait for their new key's first use", ErrPending, res.Pending, len(plan))
	}
	return res, nil
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
	now, _ := r.API.ServerNow()
	j := &Journal{Old: RefOf(old), OldCreatedBy: old.CreatedBy.Email, Reason: ReasonScheduled,
		Actor: Actor{Email: me.User.Email, Local: r.localActor()}, StartedAt: now, UpdatedAt: now, Target: opts.Target}
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
