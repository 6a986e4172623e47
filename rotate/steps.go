package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/plana-cli/plana/internal/duration"
)

// stepRow is one step of the procedure, everything about it in one place:
// what the walk runs, what keys status says it waits for, and what a dry run
// says it would do. Rows hold no state; the journal does.
type stepRow struct {
	name    string // id, in Steps and in tests
	number  int    // the procedure's step it belongs to (1-5); 0: outside the five
	heading string // shown when the step begins; "" for the check inside step 1
	summary string // one line for the help; "" for rows the help does not list
	// mode is when the row is part of the procedure.
	mode procMode
	// done is the step's work being complete by the journal alone.
	done func(*Journal) bool
	// recheck makes the walk run the step even when done: the journal
	// cannot tell alone (the plaintext may be gone from the keyring; the
	// deploy target may have changed).
	recheck bool
	// waiting is what the rotation waits for while this is its first step
	// not done (keys status).
	waiting func(*Journal) string
	// plan adds the dry run's lines for the step.
	plan func(*planner, context.Context) error
	// run does the step; the walk calls it only while the step is not
	// done (or rechecks), so it need not ask again.
	run func(*session, context.Context) error
}

// procMode says which procedure a row is part of.
type procMode int

const (
	always    procMode = iota
	planned            // the planned rotation only
	emergency          // the emergency rotation only
)

// The rows, in the order of the procedure.
var (
	// Before step 1, the server: a rotation under way is carried on, one
	// finished elsewhere is over. Done by the journal always, since the
	// journal cannot tell; run every time.
	stepReconcile = &stepRow{name: "server",
		done: func(*Journal) bool { return true }, recheck: true,
		waiting: func(*Journal) string { return "" },
		plan:    (*planner).reconcile, run: (*session).reconcile}
	stepCreate = &stepRow{name: "create", number: 1, heading: "Step 1: create the new key",
		summary: "create a new key with the same scopes, named with the current year, its plaintext straight into the OS keyring",
		done:    func(j *Journal) bool { return j.New != nil }, recheck: true,
		waiting: func(j *Journal) string {
			if j.State == Started {
				return "the answer of the create request: run plana keys rotate again to recover it"
			}
			return "a new key (the last attempt was revoked): run plana keys rotate again"
		},
		plan: (*planner).create, run: (*session).ensureCreated}
	// After step 1 and before anyone is handed the new key: the race rule.
	stepSettle = &stepRow{name: "settle", number: 1,
		done: func(*Journal) bool { return true }, recheck: true,
		waiting: func(*Journal) string { return "" },
		plan:    (*planner).nothing, run: (*session).settle}
	stepCheck = &stepRow{name: "check", number: 1,
		done:    func(j *Journal) bool { return j.State.Reached(Checked) },
		waiting: func(*Journal) string { return "a check that the new key answers" },
		plan:    (*planner).check, run: (*session).ensureChecked}
	stepRevokeNow = &stepRow{name: "emergency-revoke", heading: "Emergency: revoke the old key now", mode: emergency,
		done:    func(j *Journal) bool { return j.oldRevoked() },
		waiting: func(*Journal) string { return "the emergency revoke of the old key" },
		plan:    (*planner).revokeNow, run: (*session).revokeNow}
	stepDeploy = &stepRow{name: "deploy", number: 2, heading: "Step 2: deploy the new key alongside the old",
		summary: "deploy it alongside the old one (--to env-file:, exec:, exec-ab:, stdout, or a secret store: k8s:, aws-sm:, aws-ssm:, sops:, pass:), reading each write back",
		done:    func(j *Journal) bool { return j.deployed() }, recheck: true,
		waiting: func(*Journal) string { return "deploying the new key" },
		plan:    (*planner).deploy, run: (*session).ensureDeployed}
	stepVerify = &stepRow{name: "verify", number: 3, heading: "Step 3: verify the new key is in use",
		summary: "wait until the new key is used and the old one has been quiet for the quiet period (server time), saying where the old key is still used from",
		done:    func(j *Journal) bool { return j.State.Reached(Verified) },
		waiting: func(j *Journal) string {
			if j.Emergency || j.oldRevoked() {
				return "the first use of the new key"
			}
			if j.QuietSeconds == 0 {
				// Deployed by the step verbs: step 3 has not resolved it yet.
				return "the gate: the new key in use and the old key unused for the quiet period"
			}
			return fmt.Sprintf("the gate: the new key in use and the old key unused for %s", duration.Approx(j.quiet()))
		},
		plan: (*planner).verify, run: (*session).ensureVerified}
	stepFinalize = &stepRow{name: "finalize", number: 4, heading: "Step 4: remove the old key from the automation", mode: planned,
		summary: "after confirmation (--yes in scripts), leave only the new key",
		done:    func(j *Journal) bool { return j.State.Reached(Finalized) },
		waiting: finalizeWaiting,
		plan:    (*planner).finalize, run: (*session).ensureFinalized}
	stepRevoke = &stepRow{name: "revoke", number: 5, heading: "Step 5: revoke the old key", mode: planned,
		summary: "revoke the old key, check it is refused, and log the rotation",
		done:    finished, waiting: revokeWaiting,
		plan: (*planner).revoke, run: (*session).ensureRevoked}
	// The emergency's steps 4 and 5: the old key is already revoked, so
	// what is left of it in the target is dead configuration, removed
	// without a question.
	stepFinishEmergency = &stepRow{name: "emergency-finish", number: 4, mode: emergency,
		done: finished,
		waiting: func(j *Journal) string {
			if j.State.Reached(Finalized) {
				return revokeWaiting(j)
			}
			return finalizeWaiting(j)
		},
		plan: (*planner).nothing, run: (*session).finishEmergency}

	table = []*stepRow{stepReconcile, stepCreate, stepSettle, stepCheck, stepRevokeNow, stepDeploy, stepVerify, stepFinalize, stepRevoke, stepFinishEmergency}
)

func finished(j *Journal) bool { return j.State == Done }

func finalizeWaiting(*Journal) string {
	return "confirmation: remove the old key from the automation (--yes)"
}

func revokeWaiting(j *Journal) string {
	if j.State.Reached(Revoked) {
		return "the check that the old key is refused"
	}
	return "the revoke of the old key"
}

// procedure is the table's rows of a planned or an emergency rotation.
func procedure(isEmergency bool) []*stepRow {
	skip := emergency
	if isEmergency {
		skip = planned
	}
	var out []*stepRow
	for _, row := range table {
		if row.mode != skip {
			out = append(out, row)
		}
	}
	return out
}

// walk runs rows in order, passing over those done by the journal unless
// they recheck, and stops at the first error; the result says how far they
// got either way.
func (s *session) walk(ctx context.Context, rows ...*stepRow) (*Result, error) {
	for _, row := range rows {
		if row.done(s.j) && !row.recheck {
			continue
		}
		s.row = row
		err := row.run(s, ctx)
		s.row = nil
		if errors.Is(err, errDone) {
			return s.result(), nil
		}
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Ctrl-C: the journal holds how far it got; say where that is.
			err = fmt.Errorf("stopped at %s; the rotation is saved, resume it with: %s: %w", row.where(), s.resumeCommand(), err)
		}
		if err != nil {
			s.notifyFailed(row, err)
			return s.result(), err
		}
	}
	return s.result(), nil
}

// where names the row as a person knows it: its step, and what it does.
func (row *stepRow) where() string {
	if row.number == 0 {
		return row.name
	}
	return fmt.Sprintf("step %d (%s)", row.number, row.name)
}

// announce shows that the step being walked begins.
func (s *session) announce() {
	if s.row != nil && s.row.heading != "" {
		s.rep.Step(s.row.heading)
	}
}

// waitingOn says what a rotation needs next, in words: the waiting text of
// its first step not done.
func waitingOn(j *Journal) string {
	for _, row := range procedure(j.Emergency) {
		if !row.done(j) {
			return row.waiting(j)
		}
	}
	return j.State.String()
}

// StepInfo describes one step of the planned procedure, for help texts.
type StepInfo struct {
	Number  int    // 1 to 5
	Name    string // create, deploy, verify, finalize, revoke
	Heading string // as shown when the step begins
	Summary string // one line: what the step does
}

// Steps lists the five steps of a planned rotation, in order.
func Steps() []StepInfo {
	var out []StepInfo
	for _, row := range procedure(false) {
		if row.summary != "" {
			out = append(out, StepInfo{Number: row.number, Name: row.name, Heading: row.heading, Summary: row.summary})
		}
	}
	return out
}
