package cmdutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/secret"
)

// A keyring token is bound to the API origin it was stored for: a
// PLANA_API_URL from a directory's .envrc, or a mistyped --api-url, must not
// carry the management key to another server. The origin is kept in a
// keyring entry of its own next to the token, so the token entry stays a
// bare key (older plana versions and `secret-tool` read it as before) and
// both live and go together on one machine. PLANA_TOKEN is not bound: the
// caller hands it over together with the URL it is meant for.

// tokenMetaName is the keyring entry describing the token of profile.
func tokenMetaName(profile string) string { return "token-meta:" + profile }

type tokenMeta struct {
	Origin string `json:"origin"`
}

// SaveToken stores the management token of profile in store, bound to the
// origin of apiURL. The old binding goes first and the new one last, so a
// failure in between never leaves a token bound to an origin it was not
// stored for; if the binding cannot be written, the token is removed again.
func SaveToken(store secret.Store, profile, token, apiURL string) error {
	origin := config.Origin(apiURL)
	if origin == "" {
		return fmt.Errorf("no API origin in %q", apiURL)
	}
	if err := store.Delete(tokenMetaName(profile)); err != nil && !errors.Is(err, secret.ErrNotFound) {
		return err
	}
	if err := store.Set(secret.TokenName(profile), token); err != nil {
		return err
	}
	if err := writeTokenMeta(store, profile, origin); err != nil {
		_ = store.Delete(secret.TokenName(profile))
		return err
	}
	return nil
}

// ForgetToken removes the token of profile and its binding; the token's
// value is returned so the caller can name its prefix. It wraps
// secret.ErrNotFound when no token is stored.
func ForgetToken(store secret.Store, profile string) (string, error) {
	tok, err := store.Get(secret.TokenName(profile))
	if err != nil {
		return "", err
	}
	if err := store.Delete(secret.TokenName(profile)); err != nil {
		return "", err
	}
	if err := store.Delete(tokenMetaName(profile)); err != nil && !errors.Is(err, secret.ErrNotFound) {
		return tok, err
	}
	return tok, nil
}

func writeTokenMeta(store secret.Store, profile, origin string) error {
	data, err := json.Marshal(tokenMeta{Origin: origin})
	if err != nil {
		return err
	}
	return store.Set(tokenMetaName(profile), string(data))
}

// CheckTokenOrigin refuses to hand out a keyring token for any origin but
// the one it was stored for. A token stored before plana recorded origins
// is bound, once, to the configured origin when that comes from the config
// file or the default, which a directory cannot change; one from
// --api-url or PLANA_API_URL is refused until `plana auth login`. notes
// receives the one-line notice of that first binding.
func CheckTokenOrigin(tok Token, cfg *config.Config, store secret.Store, notes io.Writer) error {
	if tok.Source != TokenFromKeyring {
		return nil
	}
	want := cfg.APIOrigin()
	src := cfg.Source(config.KeyAPIURL)
	raw, err := store.Get(tokenMetaName(tok.Profile))
	switch {
	case errors.Is(err, secret.ErrNotFound):
		if src.Kind == config.SourceFlag || src.Kind == config.SourceEnv {
			return &AuthError{Err: fmt.Errorf("the token stored for profile %s (%s) has no API origin recorded (it was saved by an older plana), "+
				"and the API URL %s comes from %s, which a directory's environment can set: plana binds that token only to an api_url from the config file.\n"+
				"Run `plana auth login` for %s, or set the URL with `plana config set api_url %s`",
				tok.Profile, tok.Prefix(), want, src, want, cfg.APIURL())}
		}
		if err := writeTokenMeta(store, tok.Profile, want); err != nil {
			return fmt.Errorf("recording the API origin of the token of profile %s: %w", tok.Profile, err)
		}
		fmt.Fprintf(notes, "Note: the token stored for profile %s (%s) is now bound to %s, the API it was first used with; "+
			"plana will not send it elsewhere until `plana auth login` is run for the other API\n", tok.Profile, tok.Prefix(), want)
		return nil
	case err != nil:
		return fmt.Errorf("reading the API origin of the token of profile %s: %w", tok.Profile, err)
	}
	var meta tokenMeta
	if err := json.Unmarshal([]byte(raw), &meta); err != nil || meta.Origin == "" {
		return &AuthError{Err: fmt.Errorf("the record of the API origin of the token of profile %s is damaged; run `plana auth login` for %s", tok.Profile, want)}
	}
	if meta.Origin != want {
		return &AuthError{Err: fmt.Errorf("the stored token (profile %s, %s) was saved for %s; run `plana auth login` for %s (the API URL from %s), "+
			"or pass a token meant for it in PLANA_TOKEN", tok.Profile, tok.Prefix(), meta.Origin, want, src)}
	}
	return nil
}
