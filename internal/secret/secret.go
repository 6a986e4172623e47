// Package secret keeps plaintexts (the management token, new keys) in the OS
// keyring, behind a small interface so tests and other backends fit.
package secret

import "errors"

// Service is the keyring service name every plana entry lives under.
const Service = "plana"

var (
	// ErrNotFound: no entry under that name.
	ErrNotFound = errors.New("secret not found in the keyring")
	// ErrUnavailable: no keyring answers (no Secret Service on a headless
	// Linux, a locked keychain, a D-Bus call that hung past the timeout).
	ErrUnavailable = errors.New("no OS keyring available")
	// ErrTooLarge: the value exceeds what every backend can hold.
	ErrTooLarge = errors.New("secret too large for the keyring")
)

// Store holds named secrets. Implementations wrap backend errors so that
// errors.Is works with the sentinels above, and never put a secret value in
// an error message.
type Store interface {
	Get(name string) (string, error)
	Set(name, value string) error
	Delete(name string) error
}

// Names of entries, so every package agrees.
func TokenName(profile string) string { return "token:" + profile }
func KeyName(keyID string) string     { return "key:" + keyID }
