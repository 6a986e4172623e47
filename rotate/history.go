package rotate

import (
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
)

// Where a row of the history comes from.
const (
	SourceLocal  = "local"        // this machine's rotation log only
	SourceServer = "server"       // the server's keys only
	SourceBoth   = "local+server" // both saw it
)

// EventAborted is a rotation called off before the revoke (--abort).
const EventAborted = "aborted"

// HistoryRow is one event of the team's rotation history.
type HistoryRow struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Old    KeyRef    `json:"old"`
	New    *KeyRef   `json:"new,omitempty"`
	Reason string    `json:"reason"`
	Actor  Actor     `json:"actor"` // the server knows only the email
	Detail string    `json:"detail,omitempty"`
	Source string    `json:"source"`
}

// identity names the one fact an event records, so the same fact seen in
// the local log and on the server is one row: a key is created once and
// revoked once, whoever looks.
func identity(event string, old KeyRef, nw *KeyRef) string {
	switch event {
	case EventCreated:
		if nw != nil {
			return "created " + nw.ID
		}
	case EventRevoked:
		return "revoked " + old.ID
	case EventAbandoned, EventAborted:
		if nw != nil {
			return "gone " + nw.ID
		}
	}
	return ""
}

// family links every key of a workspace to the key it replaced.
type family struct {
	byID    map[string]client.APIKey
	pred    map[string]KeyRef // successor id → the key it replaces
	lineage map[string]Lineage
	succ    map[string][]client.APIKey // predecessor id → its successors, race order
}

// baseName is a name without its year suffix: keys that can succeed one
// another by the name rule share it.
func baseName(name string) string {
	base := strings.TrimSpace(name)
	if m := yearSuffix.FindStringSubmatch(base); m != nil {
		base = strings.TrimSpace(m[1])
	}
	return base
}

func newFamily(keys []client.APIKey) *family {
	f := &family{byID: map[string]client.APIKey{}, pred: map[string]KeyRef{}, lineage: map[string]Lineage{}, succ: map[string][]client.APIKey{}}
	byPrefix := map[string]client.APIKey{}
	byBase := map[string][]client.APIKey{}
	for _, k := range keys {
		f.byID[k.ID] = k
		byPrefix[k.Prefix] = k
		byBase[baseName(k.Name)] = append(byBase[baseName(k.Name)], k)
	}
	for _, k := range keys {
		if l, ok := ParseLineage(k.Description); ok {
			f.lineage[k.ID] = l
			ref := KeyRef{Prefix: l.OldPrefix, Name: l.OldName}
			if p, ok := byPrefix[l.OldPrefix]; ok {
				ref = RefOf(p)
				f.succ[p.ID] = append(f.succ[p.ID], k)
			}
			f.pred[k.ID] = ref
			continue
		}
		// Made by hand: the newest key it can succeed by the name rule.
		var best *client.APIKey
		for _, p := range byBase[baseName(k.Name)] {
			if IsSuccessor(p, k) && (best == nil || raceOrder(p, *best) > 0) {
				best = &p
			}
		}
		if best != nil {
			f.pred[k.ID] = RefOf(*best)
			f.succ[best.ID] = append(f.succ[best.ID], k)
		}
	}
	for id := range f.succ {
		slices.SortFunc(f.succ[id], raceOrder)
	}
	return f
}

// kept is the successor that carried old's rotation on: the winner while
// one is active, else the one that went on to be rotated itself.
func (f *family) kept(oldID string) (client.APIKey, bool) {
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

// ServerHistory is the rotation history the server can tell, from every key
// of the workspace (active and revoked): each successor's creation with the
// lineage in its description, each replaced key's revoke, and each
// successor revoked without replacing anything (lost a race, aborted, or
// its plaintext was lost). A machine that took part in nothing sees it all.
func ServerHistory(keys []client.APIKey) []HistoryRow {
	f := newFamily(keys)
	var rows []HistoryRow
	for _, k := range keys {
		ref := RefOf(k)
		if p, ok := f.pred[k.ID]; ok {
			row := HistoryRow{Time: k.CreatedAt, Event: EventCreated, Old: p, New: &ref, Actor: Actor{Email: k.CreatedBy.Email}, Source: SourceServer}
			if l, ok := f.lineage[k.ID]; ok {
				row.Reason = l.Reason
			} else {
				row.Detail = "made by hand: linked by its name"
			}
			rows = append(rows, row)
		}
		if k.RevokedAt == nil {
			continue
		}
		var by Actor
		if k.RevokedBy != nil {
			by.Email = k.RevokedBy.Email
		}
		if nw, ok := f.kept(k.ID); ok {
			nref := RefOf(nw)
			rows = append(rows, HistoryRow{Time: *k.RevokedAt, Event: EventRevoked, Old: ref, New: &nref, Reason: f.lineage[nw.ID].Reason, Actor: by, Source: SourceServer})
		} else if p, ok := f.pred[k.ID]; ok {
			rows = append(rows, HistoryRow{Time: *k.RevokedAt, Event: EventAbandoned, Old: p, New: &ref, Reason: f.lineage[k.ID].Reason, Actor: by, Source: SourceServer})
		}
	}
	sortHistory(rows)
	return rows
}

// LocalHistory is this machine's rotation log as history rows.
func LocalHistory(entries []LogEntry) []HistoryRow {
	rows := make([]HistoryRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, HistoryRow{Time: e.Time, Event: e.Event, Old: e.Old, New: e.New, Reason: e.Reason, Actor: e.Actor, Detail: e.Detail, Source: SourceLocal})
	}
	return rows
}

// MergeHistory puts the local log and the server's history together, oldest
// first. A fact both recorded is one row marked SourceBoth, in the local
// line's words (its actor names the machine, its event may say "aborted")
// and at its time, which keeps it in order with the local lines around it.
func MergeHistory(local, server []HistoryRow) []HistoryRow {
	onServer := map[string]int{}
	out := slices.Clone(server)
	for i, r := range out {
		if id := identity(r.Event, r.Old, r.New); id != "" {
			onServer[id] = i
		}
	}
	for _, r := range local {
		i, ok := onServer[identity(r.Event, r.Old, r.New)]
		if !ok {
			out = append(out, r)
			continue
		}
		r.Source = SourceBoth
		if r.New == nil {
			r.New = out[i].New
		}
		out[i] = r
	}
	sortHistory(out)
	return out
}

// eventRank orders events of one instant the way a rotation runs.
var eventRank = map[string]int{EventCreated: 0, EventAbandoned: 1, EventAborted: 1, EventDeployed: 2, EventVerified: 3, EventFinalized: 4, EventRevoked: 5, EventRotated: 6}

func sortHistory(rows []HistoryRow) {
	slices.SortStableFunc(rows, func(a, b HistoryRow) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return eventRank[a.Event] - eventRank[b.Event]
	})
}

// ChainOf is key id's line of descent: the keys it replaced, oldest first,
// and the keys that replaced it, nearest first (the successor each rotation
// kept). Both are empty for a key that was never rotated.
func ChainOf(keys []client.APIKey, id string) (preds, succs []client.APIKey) {
	f := newFamily(keys)
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
		k, ok := f.kept(cur)
		if !ok || seen[k.ID] {
			break
		}
		seen[k.ID] = true
		succs = append(succs, k)
		cur = k.ID
	}
	return preds, succs
}
