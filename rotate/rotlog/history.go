package rotlog

import (
	"slices"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

// Where a row of the history comes from.
const (
	SourceLocal  = "local"        // this machine's rotation log only
	SourceServer = "server"       // the server's keys only
	SourceBoth   = "local+server" // both saw it
)

// HistoryRow is one event of the team's rotation history.
type HistoryRow struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Old    ref.Key   `json:"old"`
	New    *ref.Key  `json:"new,omitempty"`
	Reason string    `json:"reason"`
	Actor  ref.Actor `json:"actor"` // the server knows only the email
	Detail string    `json:"detail,omitempty"`
	Source string    `json:"source"`
	// Unverified: the local line could not be verified here (see
	// Log.Check); a server row is never.
	Unverified bool `json:"unverified,omitempty"`
}

// identity names the one fact an event records, so the same fact seen in
// the local log and on the server is one row: a key is created once and
// revoked once, whoever looks.
func identity(event string, old ref.Key, nw *ref.Key) string {
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

// ServerHistory is the rotation history the server can tell, from every key
// of the workspace (active and revoked): each successor's creation with the
// lineage in its description, each replaced key's revoke, and each
// successor revoked without replacing anything (lost a race, aborted, or
// its plaintext was lost). A machine that took part in nothing sees it all.
// Only lineage caller (the user plana runs as) believes is history: a key
// that claims to replace another without being believed replaced nothing.
func ServerHistory(keys []client.APIKey, caller client.User) []HistoryRow {
	f := lineage.NewFamily(keys, caller)
	var rows []HistoryRow
	for _, k := range keys {
		kr := ref.Of(k)
		if p, ok := f.Predecessor(k.ID); ok {
			row := HistoryRow{Time: k.CreatedAt, Event: EventCreated, Old: p, New: &kr, Actor: ref.Actor{Email: k.CreatedBy.Email}, Source: SourceServer}
			if l, ok := f.Claim(k.ID); ok {
				row.Reason = l.Reason
			} else {
				row.Detail = "made by hand: linked by its name"
			}
			rows = append(rows, row)
		}
		if k.RevokedAt == nil {
			continue
		}
		var by ref.Actor
		if k.RevokedBy != nil {
			by.Email = k.RevokedBy.Email
		}
		if nw, ok := f.Kept(k.ID); ok {
			nref := ref.Of(nw)
			c, _ := f.Claim(nw.ID)
			rows = append(rows, HistoryRow{Time: *k.RevokedAt, Event: EventRevoked, Old: kr, New: &nref, Reason: c.Reason, Actor: by, Source: SourceServer})
		} else if p, ok := f.Predecessor(k.ID); ok {
			c, _ := f.Claim(k.ID)
			rows = append(rows, HistoryRow{Time: *k.RevokedAt, Event: EventAbandoned, Old: p, New: &kr, Reason: c.Reason, Actor: by, Source: SourceServer})
		}
	}
	sortHistory(rows)
	return rows
}

// LocalHistory is this machine's rotation log as history rows.
func LocalHistory(entries []Entry) []HistoryRow {
	rows := make([]HistoryRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, HistoryRow{Time: e.Time, Event: e.Event, Old: e.Old, New: e.New, Reason: e.Reason, Actor: e.Actor, Detail: e.Detail, Source: SourceLocal, Unverified: e.Unverified})
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
