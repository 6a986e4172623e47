package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/ref"
)

// ManagementWindow is how far back StoredOn reads the execution log for
// the management keys plana used on a machine: a quarter, long enough for
// a laptop used now and then, short enough to read.
const ManagementWindow = 90 * 24 * time.Hour

// StoredOn plans the emergency for a lost or stolen machine, host (its
// machine_name, matched without regard to case, as host names are): every
// active key whose plaintext plana put into host's keyring, which is what
// its lineage says when the caller believes it (lineage's trust rule: a
// claim anyone can write names any machine); the rotations under way whose
// successor is there; and the management keys plana used on host, as the
// execution log's User-Agent (plana/VERSION (OS; HOST)) shows over
// ManagementWindow. Every other active key is counted elsewhere when its
// lineage names another machine, and listed as Unplaced when nothing says
// where its plaintext is.
func StoredOn(ctx context.Context, r *rotate.Rotator, host string, o rotate.Options) (*Plan, error) {
	b, err := newBuilder(ctx, r, rotate.ReasonLostDevice, "stored on "+host)
	if err != nil {
		return nil, err
	}
	onHost := func(id string) bool {
		c, ok := b.family.Claim(id)
		return ok && strings.EqualFold(c.Host, host)
	}
	stored := fmt.Sprintf("stored on %s, by its lineage", host)
	for _, k := range b.keys {
		if k.Active() && onHost(k.ID) {
			b.concern(k, stored)
		}
	}
	b.resume(r, func(j *rotate.Journal) bool {
		return onHost(j.Old.ID) || slices.ContainsFunc(j.PassedOver, func(p ref.Key) bool { return onHost(p.ID) })
	})
	until, ok := r.API.ServerNow()
	if !ok {
		until = time.Now()
	}
	until = until.UTC()
	b.plan.Window = &Window{Since: until.Add(-ManagementWindow), Until: until}
	for _, k := range b.keys {
		if !k.Active() || !isManagement(k) || b.seen[k.ID] {
			continue
		}
		e, found, err := usedOn(ctx, r.API, k, host, b.plan.Window.Since)
		if err != nil {
			return nil, fmt.Errorf("reading the execution log of %s: %w", label(k), err)
		}
		if found {
			b.concern(k, fmt.Sprintf("used by plana on %s, last on %s from %s", host, e.At.UTC().Format(time.DateOnly), e.SourceIP))
		}
	}
	for _, k := range b.keys {
		if !k.Active() || b.seen[k.ID] || k.ID == b.me.Key.ID {
			continue
		}
		why, elsewhere := b.unplaced(k, host)
		if elsewhere {
			b.plan.Elsewhere++
			continue
		}
		b.plan.Unplaced = append(b.plan.Unplaced, PlanKey{Key: k, Why: why})
	}
	return b.finish(r, o), nil
}

// Window is a stretch of the execution log, in server time.
type Window struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// unplaced says why nothing places k, an active key the incident does not
// concern, or that its lineage names another machine.
func (b *builder) unplaced(k client.APIKey, host string) (why string, elsewhere bool) {
	if c, ok := b.family.Claim(k.ID); ok {
		if c.Host != "" {
			return "", true
		}
		why = "its lineage names no machine (written before plana named machines, or by a run without a keyring)"
	} else if c, ok := b.family.Doubted(k.ID); ok {
		if c.Claim != nil && strings.EqualFold(c.Claim.Host, host) {
			why = fmt.Sprintf("its description names %s, but is not trusted: %s", c.Claim.Host, c.Why())
		} else {
			why = "its lineage is not trusted: " + c.Why()
		}
	} else if p, ok := b.family.Predecessor(k.ID); ok {
		why = fmt.Sprintf("made by hand as the successor of %s (%s), with no lineage", p.Name, p.Prefix)
	} else {
		why = "created outside plana, with no lineage: it may be anywhere"
	}
	by := k.CreatedBy.Email
	if k.CreatedBy.Role != "" {
		by += " (" + k.CreatedBy.Role + ")"
	}
	why = fmt.Sprintf("created by %s on %s; %s", by, k.CreatedAt.UTC().Format(time.DateOnly), why)
	if isManagement(k) {
		why += fmt.Sprintf("; a management key plana has not used on %s in the last %d days", host, int(ManagementWindow.Hours()/24))
	}
	return why, false
}

// errFound stops a read of the log at the entry it looked for.
var errFound = errors.New("found")

// usedOn finds the last call since since that k made through plana on
// host: newest first, so the read stops at the first.
func usedOn(ctx context.Context, api *client.Client, k client.APIKey, host string, since time.Time) (client.ExecutionLogEntry, bool, error) {
	var hit client.ExecutionLogEntry
	err := api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: k.ID, Since: since, PageSize: pageSize}, func(page []client.ExecutionLogEntry) error {
		for _, e := range page {
			if h, ok := PlanaHost(e.UserAgent); ok && strings.EqualFold(h, host) {
				hit = e
				return errFound
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return hit, true, nil
	}
	return hit, false, err
}

// PlanaHost is the machine a plana User-Agent names: HOST in
// "plana/VERSION (OS; HOST)". ok is false for any other User-Agent.
func PlanaHost(ua string) (host string, ok bool) {
	rest, ok := strings.CutPrefix(ua, "plana/")
	if !ok {
		return "", false
	}
	_, comment, ok := strings.Cut(rest, " (")
	if !ok {
		return "", false
	}
	comment, ok = strings.CutSuffix(comment, ")")
	if !ok {
		return "", false
	}
	_, host, ok = strings.Cut(comment, "; ")
	if !ok || host == "" || strings.ContainsAny(host, "; ()") {
		return "", false
	}
	return host, true
}
