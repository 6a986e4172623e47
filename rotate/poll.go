package rotate

import (
	"context"
	"errors"
	"time"
)

// errDeadline is a poll's own deadline passing.
var errDeadline = errors.New("deadline passed")

// stoppedError is a poll that stopped waiting before try was done: Cause is
// errDeadline or the context's error.
type stoppedError struct{ Cause error }

func (e *stoppedError) Error() string { return "stopped waiting: " + e.Cause.Error() }
func (e *stoppedError) Unwrap() error { return e.Cause }

// poll calls try until it is done or fails, waiting wait between calls,
// doubled after each wait up to maxWait (maxWait <= wait: a fixed interval).
// It returns nil when try is done, try's error as it is, or a *stoppedError
// when ctx ends or deadline (> 0) passes during a wait. The deadline only
// bounds the waits: a call under way is bounded by ctx alone.
func poll(ctx context.Context, wait, maxWait, deadline time.Duration, try func() (bool, error)) error {
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
			return &stoppedError{Cause: ctx.Err()}
		case <-expired:
			t.Stop()
			return &stoppedError{Cause: errDeadline}
		case <-t.C:
		}
		wait = max(wait, min(2*wait, maxWait))
	}
}
