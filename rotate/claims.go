package rotate

import (
	"fmt"
	"slices"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

// What a rotation makes of the lineage others wrote on the server. It
// carries on only a successor the caller believes (lineage.Successors); it
// shows every claimant and goes on as if it did not exist; and an emergency
// carries on nothing that was there before it: it creates its own key.

// successors are the old key's successors this rotation may carry on or
// race against, the race rule's winner first: those the caller believes,
// less those an emergency passed over. Each active claimant is reported,
// once a run (a revoked one can do nothing).
func (s *session) successors(keys []client.APIKey) []client.APIKey {
	succ, claimants := lineage.Successors(s.old, keys, s.caller)
	for _, c := range claimants {
		if c.Key.Active() {
			s.noteClaimant(c)
		}
	}
	return slices.DeleteFunc(succ, func(k client.APIKey) bool {
		return slices.ContainsFunc(s.j.PassedOver, func(p ref.Key) bool { return p.ID == k.ID })
	})
}

// noteClaimant says, once a run, that c claims to replace the old key and
// is ignored: who created it, and why it is not trusted; in an emergency,
// with the command that revokes it.
func (s *session) noteClaimant(c lineage.Claimant) {
	if slices.ContainsFunc(s.res.Claimants, func(o lineage.Claimant) bool { return o.Key.ID == c.Key.ID }) {
		return
	}
	s.res.Claimants = append(s.res.Claimants, c)
	k := c.Key
	role := k.CreatedBy.Role
	if role == "" {
		role = "role unknown"
	}
	msg := fmt.Sprintf("%s (%s), created by %s (%s) on %s, claims to replace %s and is not trusted, so plana ignores it: %s",
		k.Name, k.Prefix, k.CreatedBy.Email, role, k.CreatedAt.UTC().Format(time.DateOnly), s.old.Prefix, c.Why())
	if s.j.Emergency {
		msg += "; revoke it with " + revokeCommand(k.ID)
	}
	s.rep.Warn(msg)
}

// passOver is an emergency's answer to the successors already there: it
// carries none on (its plaintext is wherever its creator put it, maybe
// with the person or the laptop the emergency is about, and nothing here
// can deploy it), it creates its own, and it says how to revoke each once
// nothing uses it. The journal keeps them, so the race rule never makes
// the emergency give way to one.
func (s *session) passOver(succ []client.APIKey) {
	for _, k := range succ {
		if k.Active() {
			s.passedOver(ref.Of(k), k.CreatedBy.Email, k.CreatedAt)
		}
	}
}

func (s *session) passedOver(k ref.Key, by string, at time.Time) {
	s.j.PassedOver = append(s.j.PassedOver, k)
	s.rep.Warn(fmt.Sprintf("not adopting %s (%s), created by %s on %s: an emergency never carries on an existing successor, it creates its own; once nothing uses that one, revoke it with %s",
		k.Name, k.Prefix, by, at.UTC().Format(time.DateOnly), revokeCommand(k.ID)))
}

// revokeCommand revokes a key that no rotation replaces (Rotator.Revoke
// with Force).
func revokeCommand(id string) string { return "plana keys revoke " + id + " --force --yes" }
