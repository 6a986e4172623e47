package rotate

import (
	"time"

	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/ref"
)

const journalVersion = 1

// PendingCreate is a create request that may have reached the server. It is
// written before the request is sent, so its answer can be found again by
// replaying the same idempotency key with the same body.
type PendingCreate struct {
	IdempotencyKey string    `json:"idempotency_key"`
	Name           string    `json:"name"`
	Scopes         []string  `json:"scopes"`
	Description    string    `json:"description,omitempty"`
	At             time.Time `json:"at"`
}

// Journal is the local record of one rotation, named after the old key.
type Journal struct {
	Version      int            `json:"version"`
	Old          ref.Key        `json:"old"`
	OldCreatedBy string         `json:"old_created_by,omitempty"`
	Pending      *PendingCreate `json:"pending_create,omitempty"`
	New          *ref.Key       `json:"new,omitempty"`
	NewCreatedAt time.Time      `json:"new_created_at,omitzero"`
	NewCreatedBy string         `json:"new_created_by,omitempty"`
	// NewHost is the machine whose keyring got the new key's plaintext, as
	// its lineage names it ("" when it names none: a keyless run's).
	NewHost         string    `json:"new_host,omitempty"`
	Adopted         bool      `json:"adopted"`          // found on the server, not made by this journal's runs
	PlaintextStored bool      `json:"plaintext_stored"` // in the keyring under secret.KeyName(New.ID)
	OwnCalls        []string  `json:"own_calls,omitempty"`
	Abandoned       []ref.Key `json:"abandoned,omitempty"`
	// PassedOver are the successors an emergency found and did not carry
	// on: still active, never this rotation's, never the race's winner.
	PassedOver []ref.Key `json:"passed_over,omitempty"`
	// Targets are where the new key goes, and how far each got.
	Targets []TargetState `json:"targets,omitempty"`
	// State is how far the procedure got; Times, when it reached each
	// state. A revoke of the old key is a time at Revoked even while the
	// procedure is before it (an emergency revokes first).
	State        State               `json:"step"`
	Times        map[State]time.Time `json:"steps"`
	Reason       string              `json:"reason"`
	Emergency    bool                `json:"emergency"`
	QuietSeconds int64               `json:"quiet_period_seconds,omitempty"`
	// QuietSuggested: QuietSeconds is plana's suggestion, which nobody
	// chose; a --quiet-period given later replaces it.
	QuietSuggested bool `json:"quiet_period_suggested,omitempty"`
	// FutureUses: uses of the old key stamped after the server's present,
	// and when plana first saw each (see gate.counted).
	FutureUses map[string]time.Time `json:"future_uses,omitempty"`
	// Gate is what step 3's gate learned of the keys' calls, so that the
	// next run does not read it all again.
	Gate      *gate.Memory `json:"gate,omitempty"`
	Actor     ref.Actor    `json:"actor"`
	StartedAt time.Time    `json:"started_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

func (j *Journal) quiet() time.Duration { return time.Duration(j.QuietSeconds) * time.Second }

// advance records state s at server time now, and moves the journal to s
// unless it is already there or further: a step done again (a deploy to a
// new target after the gate held) gets its new time, not an earlier state.
func (j *Journal) advance(s State, now time.Time) {
	if !j.State.Reached(s) {
		j.State = s
	}
	j.at(s, now)
}

// at records that what state s stands for happened at now, wherever the
// procedure is.
func (j *Journal) at(s State, now time.Time) {
	if j.Times == nil {
		j.Times = map[State]time.Time{}
	}
	j.Times[s] = now.UTC()
}

// deployed says step 2 is done: every target holds the new key (none is
// needed when the user deploys by hand).
func (j *Journal) deployed() bool { return j.State.Reached(Deployed) && allDeployed(j.Targets) }

// oldRevoked says the old key was revoked, by this rotation or elsewhere.
func (j *Journal) oldRevoked() bool { return !j.Times[Revoked].IsZero() }

// reset is the only way back: the successor under way is abandoned (revoked,
// or never answered), and the rotation starts again from before step 1. What
// was abandoned stays in Abandoned; the steps' times stay as history.
func (j *Journal) reset() {
	j.Pending, j.New, j.NewCreatedAt, j.NewCreatedBy, j.NewHost, j.Adopted = nil, nil, time.Time{}, "", "", false
	j.PlaintextStored, j.OwnCalls, j.Gate = false, nil, nil
	// The targets stay the rotation's, but none holds the next key yet.
	for i := range j.Targets {
		j.Targets[i].Deployed, j.Targets[i].Finalized, j.Targets[i].Error = false, false, ""
	}
	j.State = NotStarted
}

// legacy is what journals written before there were State and several
// targets said in fields they no longer have: one target, whether it was
// deployed, whether the old key was revoked.
type legacy struct {
	Step       string `json:"step"` // read apart, to name a step this version does not know
	Target     string `json:"target"`
	Deployed   bool   `json:"deployed"`
	OldRevoked bool   `json:"old_revoked"`
}

// upgrade carries what an older journal said in l over to j's fields.
func (j *Journal) upgrade(l legacy) {
	if len(j.Targets) == 0 && l.Target != "" {
		j.Targets = []TargetState{{Target: l.Target, Deployed: l.Deployed, Finalized: j.State.Reached(Finalized)}}
	}
	if l.OldRevoked && !j.oldRevoked() {
		// When is not known: the journal was last written then at the latest.
		j.at(Revoked, j.UpdatedAt)
	}
}
