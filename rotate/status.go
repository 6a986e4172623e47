package rotate

import (
	"fmt"
	"path/filepath"
	"time"
)

// StatusItem is one unfinished rotation.
type StatusItem struct {
	Old       KeyRef    `json:"old"`
	New       *KeyRef   `json:"new,omitempty"`
	Step      Step      `json:"step"`
	WaitingOn string    `json:"waiting_on"`
	Since     time.Time `json:"since"`
	Emergency bool      `json:"emergency"`
	Reason    string    `json:"reason"`
	Target    string    `json:"target,omitempty"`
	Journal   string    `json:"journal"`
}

// Status lists the unfinished rotations of a state directory, oldest first.
// Damaged journals come back as errors (*JournalError) next to the rest.
func Status(stateDir string) ([]StatusItem, []error) {
	js := journals{dir: filepath.Join(stateDir, "rotations")}
	all, errs := js.all()
	out := make([]StatusItem, 0, len(all))
	for _, j := range all {
		out = append(out, StatusItem{Old: j.Old, New: j.New, Step: j.Step, WaitingOn: waitingOn(j), Since: j.UpdatedAt,
			Emergency: j.Emergency, Reason: j.Reason, Target: j.Target, Journal: js.path(j.Old.ID)})
	}
	return out, errs
}

// waitingOn says what a rotation needs next, in words.
func waitingOn(j *Journal) string {
	switch j.Step {
	case StepNone:
		return "a new key (the last attempt was revoked): run plana keys rotate again"
	case StepStarted:
		return "the answer of the create request: run plana keys rotate again to recover it"
	case StepCreated:
		return "a check that the new key answers"
	case StepChecked:
		if j.Emergency && !j.OldRevoked {
			return "the emergency revoke of the old key"
		}
		return "deploying the new key"
	case StepDeployed:
		if j.Emergency || j.OldRevoked {
			return "the first use of the new key"
		}
		return fmt.Sprintf("the gate: the new key in use and the old key unused for %s", fmtDuration(j.quiet()))
	case StepVerified:
		return "confirmation: remove the old key from the automation (--yes)"
	case StepFinalized:
		return "the revoke of the old key"
	case StepRevoked:
		return "the check that the old key is refused"
	}
	return string(j.Step)
}
