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
	// ChainUnkeyed is a line of a keyed log appended without its key (no
	// keyring here, or a fresh one), hashed like ChainPlain: the record is
	// kept, and Check says it could not verify it.
	ChainUnkeyed = "sha256-unkeyed"
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

// warned remembers the logs whose fallback to the plain chain, or to
// unkeyed lines, was already reported, so a rotation's seven appends warn
// once.
var warned sync.Map

// appendKey returns the key to chain the next entry with, nil when there
// is none here. The first append with a keyring makes the key. Without one,
// a log not keyed yet goes on with the plain chain, and a keyed log gets
// the entry unkeyed: a record is never dropped for want of a keyring.
func (l Log) appendKey(keyed bool) []byte {
	if l.Keys == nil {
		return l.noKey(keyed, errors.New("no keyring was given"))
	}
	v, err := l.Keys.Get(l.keyName())
	switch {
	case err == nil:
		key, err := decodeLogKey(v, l.Path)
		if err != nil {
			return l.noKey(keyed, err)
		}
		return key
	case errors.Is(err, secret.ErrNotFound) && keyed:
		return l.noKey(keyed, fmt.Errorf("its key %s is not in this keyring (a fresh keyring?)", l.keyName()))
	case errors.Is(err, secret.ErrNotFound):
		b := make([]byte, logKeyLen)
		if _, err := rand.Read(b); err != nil {
			return l.noKey(false, err)
		}
		if err := l.Keys.Set(l.keyName(), hex.EncodeToString(b)); err != nil {
			return l.noKey(false, err)
		}
		return b
	}
	return l.noKey(keyed, err)
}

// noKey is appendKey without a key: it says so, once per log.
func (l Log) noKey(keyed bool, why error) []byte {
	if _, done := warned.LoadOrStore(l.Path, true); done {
		return nil
	}
	if keyed {
		l.warn(fmt.Sprintf("the rotation log %s is keyed, but its key cannot be read here (%v): entries are appended unkeyed, and plana keys log says it cannot verify them. If the keyring lost the key for good, move the log aside (mv %s %s.old) and the next entry starts a new keyed log", l.Path, why, l.Path, l.Path))
	} else {
		l.warn(fmt.Sprintf("the rotation log is chained with plain SHA-256, not keyed (%v): anyone who can write %s can rewrite it unnoticed; with a working keyring its chain is keyed (HMAC-SHA256)", why, l.Path))
	}
	return nil
}

// verifyKey is the key to check keyed lines with; nil, with why, when it
// cannot be read here.
func (l Log) verifyKey() (key []byte, why string) {
	if l.Keys == nil {
		return nil, "no keyring was opened"
	}
	v, err := l.Keys.Get(l.keyName())
	if errors.Is(err, secret.ErrNotFound) {
		return nil, "this keyring holds no key for this log (" + l.keyName() + "; a fresh keyring, or another machine's log?)"
	}
	if err != nil {
		return nil, "the keyring holding its key does not answer here (" + err.Error() + ")"
	}
	key, err = decodeLogKey(v, l.Path)
	if err != nil {
		return nil, err.Error()
	}
	return key, ""
}

func decodeLogKey(v, path string) ([]byte, error) {
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != logKeyLen {
		return nil, fmt.Errorf("the keyring's key for the rotation log %s is damaged", path)
	}
	return b, nil
}
