package rotate

import (
	"time"

	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/ref"
)

// StatusItem is one unfinished rotation.
type StatusItem struct {
	Old       ref.Key       `json:"old"`
	New       *ref.Key      `json:"new,omitempty"`
	State     State         `json:"step"`
	WaitingOn string        `json:"waiting_on"`
	Since     time.Time     `json:"since"`
	Emergency bool          `json:"emergency"`
	Reason    string        `json:"reason"`
	Targets   []TargetState `json:"targets,omitempty"`
	Journal   string        `json:"journal"`
	// NewCreatedAt and QuietPeriod let a reader follow the migration.
	NewCreatedAt time.Time     `json:"new_created_at,omitzero"`
	QuietPeriod  duration.JSON `json:"quiet_period,omitempty"`
}

// Status lists the unfinished rotations of a state directory, oldest first.
// Damaged journals come back as errors (*JournalError) next to the rest.
func Status(stateDir string) ([]StatusItem, []error) {
	js := journalsOf(stateDir)
	all, errs := js.all()
	out := make([]StatusItem, 0, len(all))
	for _, j := range all {
		out = append(out, StatusItem{Old: j.Old, New: j.New, State: j.State, WaitingOn: waitingOn(j), Since: j.UpdatedAt,
			Emergency: j.Emergency, Reason: j.Reason, Targets: j.Targets, Journal: js.path(j.Old.ID),
			NewCreatedAt: j.NewCreatedAt, QuietPeriod: duration.JSON(j.quiet())})
	}
	return out, errs
}

// Unfinished reads the journals of the unfinished rotations of stateDir,
// oldest first. Damaged journals come back as errors (*JournalError).
func Unfinished(stateDir string) ([]*Journal, []error) { return journalsOf(stateDir).all() }

// Inventory is what a state directory holds of unfinished rotations, for
// plana doctor.
type Inventory struct {
	Dir        string       // the folder of the journals
	Unfinished []StatusItem // oldest first
	Damaged    []error      // journals that cannot be read (*JournalError)
}

// Rotations takes the inventory of the unfinished rotations of stateDir.
func Rotations(stateDir string) Inventory {
	items, errs := Status(stateDir)
	return Inventory{Dir: RotationsDir(stateDir), Unfinished: items, Damaged: errs}
}
