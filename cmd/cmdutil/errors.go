package cmdutil

import (
	"errors"
	"fmt"
)

// Exit codes, documented in `plana help exit-codes`. cmd/root maps errors
// onto them in one place.
const (
	ExitOK         = 0
	ExitFailure    = 1
	ExitUsage      = 2 // bad flags or arguments
	ExitPending    = 3 // a gate is not met yet, or work is pending: run again later
	ExitAuth       = 4 // not authenticated
	ExitDue        = 5 // `keys due`: keys are due for rotation
	ExitSuspicious = 6 // `keys audit`: calls the keys' owners did not make
	ExitCancel     = 130
)

// FlagError is a usage error: the message is printed with the command's usage
// and the process exits 2.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: fmt.Errorf(format, args...)}
}

// MutuallyExclusive is the one check of flags that exclude each other: a
// usage error with message when more than one of conditions holds. cobra's
// MarkFlagsMutuallyExclusive cannot serve: its error has its own wording and
// exits 1, where a usage error exits 2 with the message the docs quote.
func MutuallyExclusive(message string, conditions ...bool) error {
	n := 0
	for _, c := range conditions {
		if c {
			n++
		}
	}
	if n > 1 {
		return &FlagError{Err: errors.New(message)}
	}
	return nil
}

// ErrSilent exits 1 without printing anything: the command already said why.
var ErrSilent = errors.New("silent error")

// ErrCancel is returned when the user interrupts or declines.
var ErrCancel = errors.New("cancelled")

// ExitError carries an explicit exit code. Err is printed unless it is nil
// or ErrSilent.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// PendingError means "not done yet, run me again later" (exit 3), e.g. the
// revoke gate does not hold yet, or `rotate --no-wait` stopped at step 3.
type PendingError struct{ Err error }

func (e *PendingError) Error() string { return e.Err.Error() }
func (e *PendingError) Unwrap() error { return e.Err }

// Pendingf builds a PendingError.
func Pendingf(format string, args ...any) error {
	return &PendingError{Err: fmt.Errorf(format, args...)}
}

// AuthError means no usable credentials (exit 4); the root adds
// "Try: plana auth login".
type AuthError struct{ Err error }

func (e *AuthError) Error() string { return e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }
