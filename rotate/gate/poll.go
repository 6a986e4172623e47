package gate

import (
	"context"
	"errors"
	"time"
)

// ErrDeadline is a poll's own deadline passing.
var ErrDeadline = errors.New("deadline passed")

// Stopped is a poll that stopped waiting before try was done: Cause is
// ErrDeadline or the context's error.
type Stopped struct{ Cause error }

func (e *Stopped) Error() string { return "stopped waiting: " + e.Cause.Error() }
func (e *Stopped) Unwrap() error { return e.Cause }

// Poll is every wait of a rotation: it calls try until it is done or
// fails, waiting wait between calls, doubled after each wait up to maxWait
// (maxWait <= wait: a fixed interval). It returns nil when try is done,
// try's error as it is, or a *Stopped when ctx ends or deadline (> 0)
// passes during a wait. The deadline only bounds the waits: a call under
// way is bounded by ctx alone. A try that rides out an outage says it is
// not done yet, and is called again at the next interval.
func Poll(ctx context.Context, wait, maxWait, deadline time.Duration, try func() (bool, error)) error {
	var expired <-chan time.Time
	if deadline > 0 {
		t := time.NewTimer(deadline)
		defer t.Stop()
		expired = t.C
	}
	for {
		done, err := try()
		if err != nil || done {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &Stopped{Cause: ctx.Err()}
		case <-expired:
			t.Stop()
			return &Stopped{Cause: ErrDeadline}
		case <-t.C:
		}
		wait = max(wait, min(2*wait, maxWait))
	}
}
