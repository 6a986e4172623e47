package lineage

import (
	"slices"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

// Family links every key of a workspace to the key it replaced, as one
// user (the caller) believes it: by the claim in its description, else, for
// a key made by hand, by the name rule. A claim that is not believed links
// nothing; it is kept as a Claimant, for the keys it claims and its own.
type Family struct {
	byID      map[string]client.APIKey
	pred      map[string]ref.Key // successor id → the key it replaces
	claims    map[string]Claim
	succ      map[string][]client.APIKey // predecessor id → its successors, race order
	claimants map[string][]Claimant      // claimed key id → its claimants, oldest first
	doubted   map[string]Claimant        // claimant id → its claim
}

// NewFamily links keys, active and revoked, as caller (the user plana runs
// as; zero when unknown) believes them.
func NewFamily(keys []client.APIKey, caller client.User) *Family {
	f := &Family{byID: map[string]client.APIKey{}, pred: map[string]ref.Key{}, claims: map[string]Claim{},
		succ: map[string][]client.APIKey{}, claimants: map[string][]Claimant{}, doubted: map[string]Claimant{}}
	byPrefix := map[string]client.APIKey{}
	byBase := map[string][]client.APIKey{}
	for _, k := range keys {
		f.byID[k.ID] = k
		byPrefix[k.Prefix] = k
		byBase[baseName(k.Name)] = append(byBase[baseName(k.Name)], k)
	}
	doubt := func(c Claimant) {
		f.doubted[c.Key.ID] = c
		if c.Old.ID != "" {
			f.claimants[c.Old.ID] = append(f.claimants[c.Old.ID], c)
		}
	}
	for _, k := range keys {
		if l, ok := Parse(k.Description); ok {
			p, known := byPrefix[l.OldPrefix]
			if !known {
				// Nothing to check it against: BOS keeps revoked keys, so a
				// key it does not list was never this workspace's.
				doubt(Claimant{Key: k, Old: ref.Key{Prefix: l.OldPrefix, Name: l.OldName}, Claim: &l,
					Doubts: []string{"it claims to replace " + l.OldPrefix + ", which this workspace does not have"}})
				continue
			}
			switch v, _, d := judge(p, k, caller); v {
			case believed:
				f.claims[k.ID] = l
				f.pred[k.ID] = ref.Of(p)
				f.succ[p.ID] = append(f.succ[p.ID], k)
			case doubted:
				doubt(Claimant{Key: k, Old: ref.Of(p), Claim: &l, Doubts: d})
			}
			continue
		}
		// Made by hand: the newest key it can succeed by the name rule; a
		// claimant of the newest it claims when it is believed for none.
		var best, claimed *client.APIKey
		var why []string
		for _, p := range byBase[baseName(k.Name)] {
			switch v, _, d := judge(p, k, caller); v {
			case believed:
				if best == nil || raceOrder(p, *best) > 0 {
					best = &p
				}
			case doubted:
				if claimed == nil || raceOrder(p, *claimed) > 0 {
					claimed, why = &p, d
				}
			}
		}
		switch {
		case best != nil:
			f.pred[k.ID] = ref.Of(*best)
			f.succ[best.ID] = append(f.succ[best.ID], k)
		case claimed != nil:
			doubt(Claimant{Key: k, Old: ref.Of(*claimed), Doubts: why})
		}
	}
	for id := range f.succ {
		slices.SortFunc(f.succ[id], raceOrder)
	}
	for id := range f.claimants {
		slices.SortFunc(f.claimants[id], func(a, b Claimant) int { return raceOrder(a.Key, b.Key) })
	}
	return f
}

// Predecessor is the key that key id replaced: the whole key when it is in
// the workspace, else only the prefix and name its claim gives.
func (f *Family) Predecessor(id string) (ref.Key, bool) {
	p, ok := f.pred[id]
	return p, ok
}

// Claimants are the keys that claim to replace key id and are not
// believed, oldest first.
func (f *Family) Claimants(id string) []Claimant { return f.claimants[id] }

// Doubted is key id's own claim to replace another key when it is not
// believed.
func (f *Family) Doubted(id string) (Claimant, bool) {
	c, ok := f.doubted[id]
	return c, ok
}

// Claim is what key id's description claims, if it claims a lineage that
// is believed.
func (f *Family) Claim(id string) (Claim, bool) {
	c, ok := f.claims[id]
	return c, ok
}

// Kept is the successor that carried old's rotation on: once old is
// revoked, the emergency successor its revoker created (an emergency passes
// over any successor already there, and revokes old right after its own
// create); else the winner while one is active; else the one that went on
// to be rotated itself.
func (f *Family) Kept(oldID string) (client.APIKey, bool) {
	s := f.succ[oldID]
	if old := f.byID[oldID]; old.RevokedBy != nil {
		var own []client.APIKey
		for _, k := range s {
			if f.claims[k.ID].Emergency && sameUser(k.CreatedBy, *old.RevokedBy) {
				own = append(own, k)
			}
		}
		if w, ok := Winner(own); ok {
			return w, true
		}
	}
	if w, ok := Winner(s); ok {
		return w, true
	}
	for _, k := range s {
		if len(f.succ[k.ID]) > 0 {
			return k, true
		}
	}
	return client.APIKey{}, false
}

// Chain is key id's line of descent: the keys it replaced, oldest first,
// and the keys that replaced it, nearest first (the successor each rotation
// kept). Both are empty for a key that was never rotated.
func (f *Family) Chain(id string) (preds, succs []client.APIKey) {
	seen := map[string]bool{id: true}
	for cur := id; ; {
		p, ok := f.pred[cur]
		k, known := f.byID[p.ID]
		if !ok || !known || seen[p.ID] {
			break
		}
		seen[p.ID] = true
		preds = append(preds, k)
		cur = p.ID
	}
	slices.Reverse(preds)
	for cur := id; ; {
		k, ok := f.Kept(cur)
		if !ok || seen[k.ID] {
			break
		}
		seen[k.ID] = true
		succs = append(succs, k)
		cur = k.ID
	}
	return preds, succs
}
