package rotate

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/plana-cli/plana/rotate/ref"
)

// journalV1 is a journal as plana wrote it before the step table: its field
// names and step strings are a contract with the files already on disk.
const journalV1 = `{
  "version": 1,
  "old": {"id": "key_old1", "prefix": "pa_live_OLD11111", "name": "Nightly stock sync (2025)", "scopes": ["stock:read"]},
  "old_created_by": "ana@example.com",
  "new": {"id": "key_new1", "prefix": "pa_live_NEW11111", "name": "Nightly stock sync (2026)", "scopes": ["stock:read"]},
  "new_created_at": "2026-11-20T10:00:00Z",
  "plaintext_stored": true,
  "own_calls": ["exe_1", "exe_2"],
  "abandoned": [{"id": "key_gone", "prefix": "pa_live_GONE1111", "name": "Nightly stock sync (2026)"}],
  "target": "env-file:/etc/stock-sync.env",
  "deployed": true,
  "old_revoked": false,
  "step": "deployed",
  "steps": {"started": "2026-11-20T09:59:59Z", "created": "2026-11-20T10:00:00Z", "checked": "2026-11-20T10:00:01Z", "deployed": "2026-11-20T10:00:02Z"},
  "reason": "scheduled",
  "emergency": false,
  "quiet_period_seconds": 172800,
  "future_uses": {"exe_9": "2026-11-20T11:00:00Z"},
  "actor": {"email": "ana@example.com", "local": "ana@box"},
  "started_at": "2026-11-20T09:59:59Z",
  "updated_at": "2026-11-20T10:00:02Z"
}
`

func TestJournalWrittenBeforeTheTableLoads(t *testing.T) {
	dir := t.TempDir()
	js := journalsOf(dir)
	if err := os.MkdirAll(js.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(js.path("key_old1"), []byte(journalV1), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := js.load("key_old1")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != Deployed || j.New == nil || j.New.ID != "key_new1" || !j.PlaintextStored || !j.deployed() || j.oldRevoked() ||
		j.quiet() != 48*time.Hour || len(j.OwnCalls) != 2 || len(j.Abandoned) != 1 || len(j.FutureUses) != 1 ||
		j.Actor.Local != "ana@box" || len(j.Targets) != 1 || j.Targets[0].Target != "env-file:/etc/stock-sync.env" || !j.Targets[0].Deployed ||
		len(j.Times) != 4 {
		t.Errorf("journal loaded as %+v", j)
	}
	items, errs := Status(dir)
	if len(errs) != 0 || len(items) != 1 {
		t.Fatalf("status: %v %v", items, errs)
	}
	if want := "the gate: the new key in use and the old key unused for 2d"; items[0].WaitingOn != want {
		t.Errorf("waiting on %q, want %q", items[0].WaitingOn, want)
	}
	inv := Rotations(dir)
	if inv.Dir != filepath.Join(dir, "rotations") || len(inv.Unfinished) != 1 || len(inv.Damaged) != 0 {
		t.Errorf("inventory %+v", inv)
	}
}

// TestWaitingOnEveryStep pins what keys status says for a journal at each
// step, planned and emergency: the table's first step not done.
func TestWaitingOnEveryStep(t *testing.T) {
	ref := &ref.Key{ID: "key_new1", Prefix: "pa_live_NEW11111"}
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		j    Journal
		want string
	}{
		{"abandoned", Journal{State: NotStarted}, "a new key (the last attempt was revoked): run plana keys rotate again"},
		{"started", Journal{State: Started}, "the answer of the create request: run plana keys rotate again to recover it"},
		{"created", Journal{State: Created, New: ref}, "a check that the new key answers"},
		{"checked", Journal{State: Checked, New: ref}, "deploying the new key"},
		{"checked, emergency", Journal{State: Checked, New: ref, Emergency: true}, "the emergency revoke of the old key"},
		{"checked, emergency revoked", Journal{State: Checked, New: ref, Emergency: true, Times: map[State]time.Time{Revoked: t0}}, "deploying the new key"},
		{"deployed", Journal{State: Deployed, New: ref, QuietSeconds: 3600}, "the gate: the new key in use and the old key unused for 1h0m0s"},
		{"deployed, quiet period not resolved yet", Journal{State: Deployed, New: ref}, "the gate: the new key in use and the old key unused for the quiet period"},
		{"deployed, emergency", Journal{State: Deployed, New: ref, Emergency: true, Times: map[State]time.Time{Revoked: t0}}, "the first use of the new key"},
		{"verified", Journal{State: Verified, New: ref}, "confirmation: remove the old key from the automation (--yes)"},
		{"verified, emergency", Journal{State: Verified, New: ref, Emergency: true, Times: map[State]time.Time{Revoked: t0}}, "confirmation: remove the old key from the automation (--yes)"},
		{"finalized", Journal{State: Finalized, New: ref}, "the revoke of the old key"},
		{"finalized, emergency", Journal{State: Finalized, New: ref, Emergency: true, Times: map[State]time.Time{Revoked: t0}}, "the revoke of the old key"},
		{"revoked", Journal{State: Revoked, New: ref, Times: map[State]time.Time{Revoked: t0}}, "the check that the old key is refused"},
	}
	for _, c := range cases {
		if got := waitingOn(&c.j); got != c.want {
			t.Errorf("%s: waiting on %q, want %q", c.name, got, c.want)
		}
	}
}

func TestProcedureOrder(t *testing.T) {
	names := func(rows []*stepRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.name)
		}
		return out
	}
	if got, want := names(procedure(false)), []string{"server", "create", "settle", "check", "deploy", "verify", "finalize", "revoke"}; !slices.Equal(got, want) {
		t.Errorf("planned procedure %v, want %v", got, want)
	}
	// The emergency revokes the old key before handing out the new one.
	if got, want := names(procedure(true)), []string{"server", "create", "settle", "check", "emergency-revoke", "deploy", "verify", "emergency-finish"}; !slices.Equal(got, want) {
		t.Errorf("emergency procedure %v, want %v", got, want)
	}
	var nums []int
	for _, s := range Steps() {
		nums = append(nums, s.Number)
		if s.Heading == "" || s.Summary == "" {
			t.Errorf("step %d (%s) lacks a heading or summary", s.Number, s.Name)
		}
	}
	if !slices.Equal(nums, []int{1, 2, 3, 4, 5}) {
		t.Errorf("Steps numbered %v", nums)
	}
}

func TestAdvanceNeverGoesBack(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	j := &Journal{}
	j.advance(Verified, t0)
	// A deploy to a new target after the gate held records its time but
	// leaves the rotation where it was.
	j.advance(Deployed, t0.Add(time.Minute))
	if j.State != Verified {
		t.Errorf("advance moved the journal back to %q", j.State)
	}
	if !j.Times[Deployed].Equal(t0.Add(time.Minute)) {
		t.Errorf("the repeated step's time was not recorded: %v", j.Times)
	}
	j.advance(Finalized, t0.Add(2*time.Minute))
	if j.State != Finalized {
		t.Errorf("advance did not move forward: %q", j.State)
	}
}

func TestResetIsTheWayBack(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	gone := ref.Key{ID: "key_gone"}
	j := &Journal{New: &ref.Key{ID: "key_new1"}, NewCreatedAt: t0, PlaintextStored: true,
		OwnCalls: []string{"exe_1"}, Pending: &PendingCreate{Name: "x"}, Abandoned: []ref.Key{gone}, Targets: []TargetState{{Target: "stdout", Deployed: true}}}
	j.advance(Deployed, t0)
	j.reset()
	if j.State != NotStarted || j.New != nil || j.Pending != nil || j.PlaintextStored || j.deployed() || j.OwnCalls != nil || !j.NewCreatedAt.IsZero() {
		t.Errorf("reset left the abandoned successor behind: %+v", j)
	}
	if len(j.Abandoned) != 1 || len(j.Targets) != 1 || j.Targets[0].Target != "stdout" || j.Times[Deployed].IsZero() {
		t.Errorf("reset lost the rotation's history or target: %+v", j)
	}
	if waitingOn(j) != "a new key (the last attempt was revoked): run plana keys rotate again" {
		t.Errorf("after reset, waiting on %q", waitingOn(j))
	}

	// Several targets: each keeps its place, and none holds the next key,
	// or step 2 would pass over them all (the aborted key stays deployed).
	j = &Journal{New: &ref.Key{ID: "key_new1"}, State: Deployed,
		Targets: []TargetState{{Target: "env-file:/eu.env", Deployed: true, Finalized: true}, {Target: "exec:./vault", Deployed: true, Error: "x"}}}
	j.reset()
	if len(j.Targets) != 2 || j.Targets[0].Target != "env-file:/eu.env" {
		t.Fatalf("reset lost the targets: %+v", j.Targets)
	}
	for _, st := range j.Targets {
		if st.Deployed || st.Finalized || st.Error != "" {
			t.Errorf("reset left %s as %+v", st.Target, st)
		}
	}
}
