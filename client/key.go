package client

import (
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

// A BOS API key is "pa_" + env + "_" + 8-char public id + 32-char secret +
// 6-char checksum, all base62. The checksum lets a client reject a mistyped or
// truncated key offline, and lets the server refuse garbage before any
// database or bcrypt work.
const (
	KeyLen         = 54
	PublicIDLen    = 8
	SecretLen      = 32
	ChecksumLen    = 6
	LivePrefix     = "pa_live_"
	TestPrefix     = "pa_test_"
	base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// ErrMalformedKey is returned by ParseKey for anything that is not a well-formed
// key. Its messages never include the key itself.
var ErrMalformedKey = errors.New("malformed API key")

// Key is the non-secret part of a parsed API key. It deliberately has no field
// for the secret, so printing a Key can never leak one.
type Key struct {
	Env      string // "live" or "test"
	PublicID string
	Prefix   string // e.g. "pa_live_AB7K2XYZ": what the UI and the execution log show
}

// ParseKey validates the shape, length, alphabet and checksum of s without
// contacting the server.
func ParseKey(s string) (Key, error) {
	var env string
	switch {
	case strings.HasPrefix(s, LivePrefix):
		env = "live"
	case strings.HasPrefix(s, TestPrefix):
		env = "test"
	default:
		return Key{}, fmt.Errorf("%w: must start with %q or %q", ErrMalformedKey, LivePrefix, TestPrefix)
	}
	if len(s) != KeyLen {
		return Key{}, fmt.Errorf("%w: length %d, want %d characters", ErrMalformedKey, len(s), KeyLen)
	}
	body := s[len(LivePrefix):]
	for i := 0; i < len(body); i++ {
		if !isBase62(body[i]) {
			return Key{}, fmt.Errorf("%w: character %d is not base62", ErrMalformedKey, len(LivePrefix)+i+1)
		}
	}
	if checksum(s[:KeyLen-ChecksumLen]) != s[KeyLen-ChecksumLen:] {
		return Key{}, fmt.Errorf("%w: checksum mismatch (mistyped or truncated?)", ErrMalformedKey)
	}
	id := body[:PublicIDLen]
	return Key{Env: env, PublicID: id, Prefix: s[:len(LivePrefix)] + id}, nil
}

// FormatKey assembles a key from its parts and appends the checksum. It is
// used by servers that mint keys (bos-emulator); env is "live" or "test".
func FormatKey(env, publicID, secret string) string {
	head := "pa_" + env + "_" + publicID + secret
	return head + checksum(head)
}

// PrefixOf returns the public prefix of s ("pa_live_" + public id) if s is a
// well-formed key, or "" otherwise: safe to log.
func PrefixOf(s string) string {
	k, err := ParseKey(s)
	if err != nil {
		return ""
	}
	return k.Prefix
}

// IsPrefix says whether s is a key's public prefix ("pa_live_" or
// "pa_test_" and a public id): what a user may type for a key, and all a
// command may print of one.
func IsPrefix(s string) bool {
	if len(s) != len(LivePrefix)+PublicIDLen || !strings.HasPrefix(s, LivePrefix) && !strings.HasPrefix(s, TestPrefix) {
		return false
	}
	for i := len(LivePrefix); i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	return true
}

func checksum(head string) string {
	n := crc32.ChecksumIEEE([]byte(head))
	var out [ChecksumLen]byte
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = base62Alphabet[n%62]
		n /= 62
	}
	return string(out[:])
}

func isBase62(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

// Base62 is the alphabet keys are drawn from, exported for key minting.
const Base62 = base62Alphabet
