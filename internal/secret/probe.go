package secret

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// Probe proves s works end to end: it writes a random entry, reads it back
// and deletes it. Run it before creating anything whose plaintext must be
// stored, so a missing keyring fails before a key exists rather than after.
func Probe(s Store) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	name := "probe:" + hex.EncodeToString(b[:4])
	value := hex.EncodeToString(b[4:])
	if err := s.Set(name, value); err != nil {
		return fmt.Errorf("keyring probe: write: %w", err)
	}
	got, err := s.Get(name)
	if err != nil {
		_ = s.Delete(name)
		return fmt.Errorf("keyring probe: read back: %w", err)
	}
	if err := s.Delete(name); err != nil {
		return fmt.Errorf("keyring probe: delete: %w", err)
	}
	if got != value {
		return fmt.Errorf("%w: keyring probe: read back a different value than written", ErrUnavailable)
	}
	if _, err := s.Get(name); !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: keyring probe: entry still present after delete", ErrUnavailable)
	}
	return nil
}
