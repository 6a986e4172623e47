package rotate

import "fmt"

// State is how far a rotation got: its place in the procedure, in order.
// It moves forward through Journal.advance; the only way back is
// Journal.reset, when a successor is abandoned and another is made. What
// happened at each target is the target's own (TargetState); a rotation is
// deployed when every target is (Journal.deployed).
type State int

// The states, in the order of the procedure.
const (
	NotStarted State = iota
	Started          // idempotency key recorded; the create may be in flight
	Created          // new key issued, plaintext stored
	Checked          // the new key answers
	Deployed         // step 2
	Verified         // step 3: the gate held
	Finalized        // step 4
	Revoked          // step 5
	Done
)

// stateNames is each state's name, in journals, in -o json and on screen.
var stateNames = [...]string{"", "started", "created", "checked", "deployed", "verified", "finalized", "revoked", "done"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// Reached reports whether s is t or later.
func (s State) Reached(t State) bool { return s >= t }

// MarshalText writes the state's name: journals and JSON output keep the
// names they always had.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	st, ok := parseState(string(b))
	if !ok {
		return fmt.Errorf("unknown step %q", b)
	}
	*s = st
	return nil
}

func parseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}
