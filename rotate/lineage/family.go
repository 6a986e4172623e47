package lineage

import (
	"slices"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

// Family links every key of a workspace to the key it replaced: by the
// claim in its description, else, for a key made by hand, by the name rule.
type Family struct {
	byID   map[string]client.APIKey
	pred   map[string]ref.Key // successor id → the key it replaces
	claims map[string]Claim
	succ   map[string][]client.APIKey // predecessor id → its successors, race order
}

// NewFamily links keys, active and revoked.
func NewFamily(keys []client.APIKey) *Family {
	f := &Family{byID: map[string]client.APIKey{}, pred: map[string]ref.Key{}, claims: map[string]Claim{}, succ: map[string][]client.APIKey{}}
	byPrefix := map[string]client.APIKey{}
	byBase := map[string][]client.APIKey{}
	for _, k := range keys {
		f.byID[k.ID] = k
		byPrefix[k.Prefix] = k
		byBase[baseName(k.Name)] = append(byBase[baseName(k.Name)], k)
	}
	for _, k := range keys {
		if l, ok := Parse(k.Description); ok {
			f.claims[k.ID] = l
			pred := ref.Key{Prefix: l.OldPrefix, Name: l.OldName}
			if p, ok := byPrefix[l.OldPrefix]; ok {
				pred = ref.Of(p)
				f.succ[p.ID] = append(f.succ[p.ID], k)
			}
			f.pred[k.ID] = pred
			continue
		}
		// Made by hand: the newest key it can succeed by the name rule.
		var best *client.APIKey
		for _, p := range byBase[baseName(k.Name)] {
			if isSuccessor(p, k) && (best == nil || raceOrder(p, *best) > 0) {
				best = &p
			}
		}
		if best != nil {
			f.pred[k.ID] = ref.Of(*best)
			f.succ[best.ID] = append(f.succ[best.ID], k)
		}
	}
	for id := range f.succ {
		slices.SortFunc(f.succ[id], raceOrder)
	}
	return f
}

// Predecessor is the key that key id replaced: the whole key when it is in
// the workspace, else only the prefix and name its claim gives.
func (f *Family) Predecessor(id string) (ref.Key, bool) {
	p, ok := f.pred[id]
	return p, ok
}

// Claim is what key id's description claims, if it claims a lineage.
func (f *Family) Claim(id string) (Claim, bool) {
	c, ok := f.claims[id]
	return c, ok
}

// Kept is the successor that carried old's rotation on: the winner while
// one is active, else the one that went on to be rotated itself.
func (f *Family) Kept(oldID string) (client.APIKey, bool) {
	s := f.succ[oldID]
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
