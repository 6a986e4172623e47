package client

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/plana-cli/plana/internal/textsafe"
)

// Sentinels matched with errors.Is against an *APIError.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrRateLimited     = errors.New("rate limited")
)

// APIError is an error answer of the BOS API.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	// RetryAfter is the server's Retry-After, zero when absent or unparseable.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("BOS API: %s (HTTP %d", msg, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.RequestID != "" {
		s += ", request " + e.RequestID
	}
	// Code and request id come from the server as they are, like the message:
	// escaped, a message can neither act on a terminal nor forge a line.
	return textsafe.Clean(redact(s + ")"))
}

// Is maps the status code onto the package's sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthenticated:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

// As lets the backoff loop see the server's Retry-After while the error that
// finally reaches the caller stays an *APIError.
func (e *APIError) As(target any) bool {
	if t, ok := target.(**backoff.RetryAfterError); ok && e.RetryAfter > 0 {
		*t = &backoff.RetryAfterError{Duration: e.RetryAfter}
		return true
	}
	return false
}

// Temporary reports whether a retry may succeed.
func (e *APIError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

var keyPattern = regexp.MustCompile(`pa_(live|test)_([0-9A-Za-z]{8})[0-9A-Za-z]{38}`)

// redact replaces anything shaped like a full key with its public prefix, so a
// message echoed by a server can never carry a plaintext into our errors.
func redact(s string) string {
	return keyPattern.ReplaceAllString(s, "pa_${1}_${2}…")
}

// Redact is redact for other packages that print text from outside.
func Redact(s string) string { return redact(s) }
