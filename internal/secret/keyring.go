package secret

import (
	"errors"
	"fmt"
	"time"

	"github.com/zalando/go-keyring"
)

// DefaultTimeout bounds every keyring call: a Secret Service call over D-Bus
// can hang forever (no daemon answering, an unlock dialog nobody sees).
const DefaultTimeout = 3 * time.Second

// MaxValueLen is the largest value stored: macOS caps an entry near 3000
// bytes including service and account names, Windows at 2560, so 2048 is
// safe on every backend. A plana key is 54 bytes.
const MaxValueLen = 2048

// unavailableHint says what to do when no keyring answers.
const unavailableHint = "start and unlock a Secret Service provider (gnome-keyring, KeePassXC) " +
	"or unlock the OS keychain; for the management token you can set PLANA_TOKEN instead"

// Keyring is the OS keyring (macOS Keychain, Windows Credential Manager,
// Secret Service on Linux) through zalando/go-keyring.
type Keyring struct {
	// Timeout bounds each call; zero means DefaultTimeout.
	Timeout time.Duration
}

// NewKeyring returns the OS keyring with calls bounded by timeout (zero:
// DefaultTimeout).
func NewKeyring(timeout time.Duration) Store {
	return WithTimeout(Keyring{}, timeout)
}

func (Keyring) Get(name string) (string, error) {
	if err := needSessionBus(); err != nil {
		return "", err
	}
	v, err := keyring.Get(Service, name)
	return v, mapErr(err)
}

func (Keyring) Set(name, value string) error {
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(value), MaxValueLen)
	}
	if err := needSessionBus(); err != nil {
		return err
	}
	return mapErr(keyring.Set(Service, name, value))
}

func (Keyring) Delete(name string) error {
	if err := needSessionBus(); err != nil {
		return err
	}
	return mapErr(keyring.Delete(Service, name))
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return ErrTooLarge
	}
	// Backend messages name the D-Bus or OS failure, never the value.
	return fmt.Errorf("%w (%v): %s", ErrUnavailable, err, unavailableHint)
}

// WithTimeout bounds every call of s by d (zero: DefaultTimeout). A call
// that does not return in time yields ErrUnavailable; its goroutine is left
// to finish on its own, since a blocked D-Bus call cannot be cancelled.
func WithTimeout(s Store, d time.Duration) Store {
	if d <= 0 {
		d = DefaultTimeout
	}
	return &timeoutStore{s: s, d: d}
}

type timeoutStore struct {
	s Store
	d time.Duration
}

type result struct {
	v   string
	err error
}

func (t *timeoutStore) run(op string, f func() (string, error)) (string, error) {
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	timer := time.NewTimer(t.d)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-timer.C:
		return "", fmt.Errorf("%w: keyring %s did not answer within %s: %s", ErrUnavailable, op, t.d, unavailableHint)
	}
}

func (t *timeoutStore) Get(name string) (string, error) {
	return t.run("read", func() (string, error) { return t.s.Get(name) })
}

func (t *timeoutStore) Set(name, value string) error {
	_, err := t.run("write", func() (string, error) { return "", t.s.Set(name, value) })
	return err
}

func (t *timeoutStore) Delete(name string) error {
	_, err := t.run("delete", func() (string, error) { return "", t.s.Delete(name) })
	return err
}
