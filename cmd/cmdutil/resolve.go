package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
)

// AmbiguousKeyError lists the keys an argument could mean.
type AmbiguousKeyError struct {
	Arg        string
	Candidates []client.APIKey
}

func (e *AmbiguousKeyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q matches %d keys; name one by id or prefix:", e.Arg, len(e.Candidates))
	for _, k := range e.Candidates {
		fmt.Fprintf(&b, "\n  %s  %s  %s  created %s by %s", k.ID, k.Prefix, k.Status,
			k.CreatedAt.UTC().Format(time.DateOnly), k.CreatedBy.Email)
	}
	return b.String()
}

// ErrKeyNotFound is wrapped by ResolveKey when nothing matches.
var ErrKeyNotFound = errors.New("no such key")

// ResolveKey finds the key arg names: an id ("key_…"), a prefix
// ("pa_live_AB7K2XYZ") or an exact name. Revoked keys are candidates too,
// but when a name matches several keys of which exactly one is active, that
// one is meant: the others are history. A full plaintext key is refused,
// since it would now sit in the shell history.
func ResolveKey(ctx context.Context, c *client.Client, arg string) (*client.APIKey, error) {
	arg = strings.TrimSpace(arg)
	switch {
	case arg == "":
		return nil, FlagErrorf("empty KEY: pass a key id, prefix or name (see plana keys list)")
	case client.PrefixOf(arg) != "":
		return nil, FlagErrorf("that argument is a full key plaintext: pass its prefix %s instead; "+
			"it is now in your shell history, so treat it as exposed and rotate it", client.PrefixOf(arg))
	case strings.HasPrefix(arg, "key_"):
		k, err := c.GetKey(ctx, arg)
		if errors.Is(err, client.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s; run plana keys list --status all to see the keys", ErrKeyNotFound, arg)
		}
		return k, err
	}
	byPrefix := client.IsPrefix(arg)
	var matches []client.APIKey
	err := c.ListKeysPages(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000}, func(page []client.APIKey) error {
		for _, k := range page {
			if (byPrefix && k.Prefix == arg) || (!byPrefix && k.Name == arg) {
				matches = append(matches, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(matches) > 1 {
		var active []client.APIKey
		for _, k := range matches {
			if k.Active() {
				active = append(active, k)
			}
		}
		if len(active) == 1 {
			matches = active
		}
	}
	switch len(matches) {
	case 0:
		what := "named"
		if byPrefix {
			what = "with prefix"
		}
		return nil, fmt.Errorf("%w %s %q; run plana keys list --status all to see the keys (names must match exactly)", ErrKeyNotFound, what, arg)
	case 1:
		return &matches[0], nil
	}
	return nil, &AmbiguousKeyError{Arg: arg, Candidates: matches}
}
