package rotate

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

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
		if k.ID != old.ID && k.CreatedBy.ID == me.User.ID && !k.CreatedAt.Before(old.CreatedAt) && lineage.IsSuccessorName(old.Name, k.Name) {
			cands = append(cands, k)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].CreatedAt.After(cands[j].CreatedAt) })
	// The settings are recorded as a new rotation's are (see open): the
	// damaged journal's are lost.
	set, _, err := settingsOf(old.Name, nil, opts)
	if err != nil {
		return nil, err
	}
	now, _ := r.API.ServerNow()
	j := &Journal{Old: ref.Of(old), OldCreatedBy: old.CreatedBy.Email, Reason: ReasonScheduled,
		Actor: ref.Actor{Email: me.User.Email, Local: r.localActor()}, StartedAt: now, UpdatedAt: now,
		QuietSeconds: int64(set.QuietPeriod / time.Second)}
	j.setTargets(set.Targets)
	for _, k := range cands {
		_, gerr := r.Secrets.Get(secret.KeyName(k.ID))
		if j.New == nil && gerr == nil {
			kr := ref.Of(k)
			j.New, j.NewCreatedAt, j.PlaintextStored = &kr, k.CreatedAt, true
			// The key exists and answers by now; its own GET /v1/me calls
			// are plana's check and must not count as the automation's.
			if j.OwnCalls, err = r.ownCalls(ctx, k.ID); err != nil {
				return nil, err
			}
			j.advance(Checked, now)
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
		j.Abandoned = append(j.Abandoned, ref.Of(k))
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
	res := &Result{Old: j.Old, New: j.New, State: j.State, Journal: p}
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
	err = r.API.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: id, PageSize: pageSize}, func(es []client.ExecutionLogEntry) error {
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
	keys, err := r.API.ListKeys(ctx, client.ListKeysOptions{Status: status, PageSize: pageSize})
	return me, keys, err
}
