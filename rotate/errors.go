package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/gate"
)

// ErrPending means the rotation stopped before its end and can be resumed by
// running it again: the gate does not hold yet, or step 4 was not confirmed.
// The CLI maps it to exit code 3.
var ErrPending = errors.New("rotation pending")

// ErrConfirmRequired is returned when step 4 needs a human and there is none.
var ErrConfirmRequired = errors.New("--yes required when not running interactively")

// ErrNoKeyring wraps secret.ErrUnavailable: the new key's plaintext would
// have nowhere safe to go, so nothing was created.
var ErrNoKeyring = fmt.Errorf("%w: nothing was created, since the new key's plaintext would have nowhere safe to go. "+
	"Use a keyring (unlock it, or install a Secret Service such as gnome-keyring), "+
	"or hand the key straight to the automation with --to env-file:PATH, a secret store (--to k8s:NAMESPACE/NAME, aws-sm:SECRET_ID, …) or --to exec:CMD, "+
	"or pass --print-secret to get the plaintext once on stdout. "+
	"For the management key itself, set PLANA_TOKEN", secret.ErrUnavailable)

// GateError is the gate of step 3 not holding (yet). It matches ErrPending.
type GateError struct{ Report gate.Report }

func (e *GateError) Error() string { return "gate not met: " + e.Report.Summary() }

// Is makes errors.Is(err, ErrPending) true.
func (e *GateError) Is(target error) bool { return target == ErrPending }

// LockedError: another plana is rotating the same key.
type LockedError struct {
	KeyID string
	PID   int
	Host  string
	Since time.Time
}

func (e *LockedError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("rotation of %s is running in another plana process; wait for it to finish", e.KeyID)
	}
	// Since is the holder's clock, not BOS's like the times around it:
	// in UTC, and said so.
	return fmt.Sprintf("rotation of %s is running in process %d on %s since %s (%s's clock); wait for it to finish, or stop that process",
		e.KeyID, e.PID, e.Host, e.Since.UTC().Format(time.RFC3339), e.Host)
}

// Is makes errors.Is(err, ErrPending) true: the rotation is under way in
// the other process, so a cron job that runs again later is right to treat
// it as work pending (exit 3), not as a failure.
func (e *LockedError) Is(target error) bool { return target == ErrPending }

// JournalError is a journal that cannot be read back (truncated, garbage).
type JournalError struct {
	Path  string
	KeyID string
	Err   error
}

func (e *JournalError) Error() string {
	var pe *fs.PathError
	switch {
	case errors.Is(e.Err, fs.ErrPermission):
		return fmt.Sprintf("the rotation journal %s cannot be read (%v): make it yours with mode 0600 (chmod 600 %s), or rebuild it from what the server knows with: plana keys rotate %s --rebuild",
			e.Path, e.Err, e.Path, e.KeyID)
	case errors.As(e.Err, &pe):
		return fmt.Sprintf("the rotation journal %s cannot be read (%v); rebuild it from what the server knows with: plana keys rotate %s --rebuild",
			e.Path, pe.Err, e.KeyID)
	}
	return fmt.Sprintf("the rotation journal %s is damaged (%v); rebuild it from what the server knows with: plana keys rotate %s --rebuild",
		e.Path, e.Err, e.KeyID)
}

func (e *JournalError) Unwrap() error { return e.Err }

// ErrUsage means the run cannot work as asked, whatever is retried: a
// target another run recorded elsewhere, a successor's name the server would
// refuse. Nothing was created. The CLI maps it to exit code 2.
var ErrUsage = errors.New("cannot work as asked")

// UsageError is a refusal that matches ErrUsage and says what to do.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string        { return e.Msg }
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

func usageErrorf(format string, a ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, a...)}
}
