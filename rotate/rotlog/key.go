package rotlog

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/plana-cli/plana/internal/secret"
)

// Chains of the rotation log, as each line records them.
const (
	// ChainKeyed is an HMAC-SHA256 chain whose key is in the keyring:
	// whoever can write the file but not read the keyring cannot rewrite
	// a line and recompute the chain.
	ChainKeyed = "hmac-sha256"
	// ChainPlain is a SHA-256 chain, used without a keyring: it shows
	// damage, but anyone who can write the file can recompute it.
	ChainPlain = "sha256"
)

// logKeyLen is the HMAC key's length in bytes: SHA-256's block-sized
// security, no more is useful.
const logKeyLen = 32

// keyNameOf is the keyring entry holding the HMAC key of the rotation log
// in stateDir. It is fixed for a state directory and differs between them:
// two state directories (two test scripts sharing one keyring) never race
// to create one entry, and a log's key is never another log's.
func keyNameOf(stateDir string) string {
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	sum := sha256.Sum256([]byte(stateDir))
	return "rotation-log:" + hex.EncodeToString(sum[:8])
}

func (l Log) keyName() string { return keyNameOf(filepath.Dir(l.Path)) }

// warnedPlain remembers the logs whose fallback to the plain chain was
// already reported, so a rotation's seven appends warn once.
var warnedPlain sync.Map

// appendKey returns the key to chain the next entry with, nil for the
// plain chain. The first append with a keyring makes the key. A keyed log
// stays keyed: without its key, the entry is refused rather than written
// as a plain line that would read as tampering.
func (l Log) appendKey(keyed bool) ([]byte, error) {
	if l.Keys == nil {
		return l.plain(keyed, errors.New("no keyring was given"))
	}
	v, err := l.Keys.Get(l.keyName())
	switch {
	case err == nil:
		return decodeLogKey(v, l.Path)
	case errors.Is(err, secret.ErrNotFound) && keyed:
		return nil, fmt.Errorf("the rotation log %s is keyed, but its key (%s) is gone from the keyring: no entry can be chained onto it; keep it as evidence and start a new log (mv %s %s.damaged; mv %s %s.damaged)",
			l.Path, l.keyName(), l.Path, l.Path, l.HeadPath(), l.HeadPath())
	case errors.Is(err, secret.ErrNotFound):
		b := make([]byte, logKeyLen)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		if err := l.Keys.Set(l.keyName(), hex.EncodeToString(b)); err != nil {
			return l.plain(false, err)
		}
		return b, nil
	}
	return l.plain(keyed, err)
}

// plain falls back to the plain chain for a log not keyed yet, saying so.
func (l Log) plain(keyed bool, why error) ([]byte, error) {
	if keyed {
		return nil, fmt.Errorf("the rotation log %s is keyed with a key in the keyring, which does not answer (%v): this entry is not recorded", l.Path, why)
	}
	if _, done := warnedPlain.LoadOrStore(l.Path, true); !done && l.Warn != nil {
		l.Warn(fmt.Sprintf("the rotation log is chained with plain SHA-256, not keyed (%v): anyone who can write %s can rewrite it unnoticed; with a working keyring its chain is keyed (HMAC-SHA256)", why, l.Path))
	}
	return nil, nil
}

// verifyKey is the key to check keyed lines with, from line n on.
func (l Log) verifyKey(n int) ([]byte, error) {
	if l.Keys == nil {
		return nil, fmt.Errorf("rotation log %s: line %d is keyed, and its key is in the keyring, which was not opened: %w", l.Path, n, secret.ErrUnavailable)
	}
	v, err := l.Keys.Get(l.keyName())
	if errors.Is(err, secret.ErrNotFound) {
		return nil, &ChainError{Path: l.Path, Line: n, Why: "is keyed, but the keyring holds no key for this log (" + l.keyName() + ")"}
	}
	if err != nil {
		return nil, fmt.Errorf("rotation log %s: line %d is keyed, and the keyring holding its key does not answer: %w", l.Path, n, err)
	}
	return decodeLogKey(v, l.Path)
}

// hasKey reports whether the keyring answers with a key for this log.
func (l Log) hasKey() bool {
	if l.Keys == nil {
		return false
	}
	_, err := l.Keys.Get(l.keyName())
	return err == nil
}

func decodeLogKey(v, path string) ([]byte, error) {
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != logKeyLen {
		return nil, fmt.Errorf("the keyring's key for the rotation log %s is damaged", path)
	}
	return b, nil
}
