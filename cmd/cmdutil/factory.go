// Package cmdutil is what every plana command shares: the Factory of lazily
// built dependencies, typed errors mapped to exit codes by cmd/root, output
// printers, time formatting and KEY resolution.
package cmdutil

import (
	"errors"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
)

// Factory builds what commands need, lazily, so `plana version` never
// touches the keyring and tests swap in an emulator and a memory store.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Config    func() (*config.Config, error)
	// Client is the management client, authenticated with Token.
	Client func() (*client.Client, error)
	// ClientFor is a client for the same API presenting other keys.
	ClientFor func(keys ...string) (*client.Client, error)
	Secrets   func() (secret.Store, error)
	// Token is the management token and where it was found.
	Token func() (Token, error)
	// StateDir is where rotation journals and the rotation log live, from
	// the Factory's environment.
	StateDir func() (string, error)
	// MachineName is this machine's name (machine_name, else the host
	// name): in the User-Agent of every request, and wherever plana records
	// which machine did something.
	MachineName func() (string, error)
	// Getenv is the environment the Factory was built with.
	Getenv     func(string) string
	Now        func() time.Time
	Version    string
	Executable string
}

// TokenSource says where the management token was found.
type TokenSource string

const (
	TokenFromEnv     TokenSource = "PLANA_TOKEN"
	TokenFromKeyring TokenSource = "keyring"
)

// Token is a management token. It prints as its prefix, so a stray %v in a
// message cannot leak it.
type Token struct {
	value   string
	Source  TokenSource
	Profile string
}

// NewToken wraps a plaintext token.
func NewToken(value string, src TokenSource, profile string) Token {
	return Token{value: value, Source: src, Profile: profile}
}

// Value is the plaintext, for the Authorization header only.
func (t Token) Value() string { return t.value }

// Prefix is the token's public prefix.
func (t Token) Prefix() string { return client.PrefixOf(t.value) }

func (t Token) String() string   { return t.Prefix() }
func (t Token) GoString() string { return "cmdutil.Token{" + t.Prefix() + "}" }

// ResolveToken finds the management token of profile: PLANA_TOKEN first
// (CI, cron), then the keyring entry secret.TokenName(profile). Commands
// that read a token from stdin (auth login --with-token) use it directly and
// never get here.
func ResolveToken(profile string, getenv func(string) string, store func() (secret.Store, error)) (Token, error) {
	if v := getenv("PLANA_TOKEN"); v != "" {
		if _, err := client.ParseKey(v); err != nil {
			return Token{}, &AuthError{Err: fmt.Errorf("PLANA_TOKEN is not a BOS key: %w", err)}
		}
		return NewToken(v, TokenFromEnv, profile), nil
	}
	s, err := store()
	if err != nil {
		return Token{}, err
	}
	v, err := s.Get(secret.TokenName(profile))
	switch {
	case errors.Is(err, secret.ErrNotFound):
		return Token{}, &AuthError{Err: fmt.Errorf("not logged in (profile %s): no PLANA_TOKEN and no token in the keyring", profile)}
	case err != nil:
		return Token{}, fmt.Errorf("reading the token of profile %s: %w", profile, err)
	}
	if _, err := client.ParseKey(v); err != nil {
		return Token{}, &AuthError{Err: fmt.Errorf("the token stored for profile %s is damaged: %w", profile, err)}
	}
	return NewToken(v, TokenFromKeyring, profile), nil
}
