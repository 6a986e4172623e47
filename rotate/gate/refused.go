package gate

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
)

// refusedCall is a call refused with 401 that is not plana's own check, in
// step 5, that the revoked key is refused: the calls of a place where the
// key is still configured.
func refusedCall(e client.ExecutionLogEntry) bool {
	return e.Status == http.StatusUnauthorized && !planaCheck(e)
}

// planaCheck is a call plana makes itself to see whether a key answers (a
// GET /v1/me with plana's user agent), from whichever machine: never the
// automation's, and never a usage source of the key. Anyone can send that
// user agent; a caller who does only hides calls that change nothing from
// the gate, and so gets its key revoked sooner, never later.
func planaCheck(e client.ExecutionLogEntry) bool {
	return e.Method == http.MethodGet && e.Path == "/v1/me" && strings.HasPrefix(e.UserAgent, "plana")
}

// maxRefusedEntries bounds how much of the log a look at refused calls
// reads: a forgotten worker retrying in a tight loop logs a call per try.
const maxRefusedEntries = 20000

// RefusedCalls reads the calls refused for key since the time given (its
// revoke), grouped by source: where a revoked key is still configured.
func RefusedCalls(ctx context.Context, api *client.Client, keyID string, since time.Time) ([]Source, error) {
	t := NewTally()
	err := api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: since, PageSize: pageSize, Limit: maxRefusedEntries},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				if refusedCall(e) {
					t.Add(e)
				}
			}
			return nil
		})
	return t.Sources(), err
}

// WatchRefused follows the calls refused for key from since on, calling fn
// once for each new one, oldest first, every poll until ctx ends. The end of
// ctx (Ctrl-C, the end of a watch window) is not an error: one last read,
// on a short leash of its own, reports what came in since the last poll.
func WatchRefused(ctx context.Context, api *client.Client, keyID string, since time.Time, poll time.Duration, fn func(client.ExecutionLogEntry) error) error {
	seen := map[string]bool{} // entries at the boundary: since is inclusive
	read := func(ctx context.Context) error {
		var fresh []client.ExecutionLogEntry
		err := api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: since, PageSize: pageSize, Limit: maxRefusedEntries},
			func(es []client.ExecutionLogEntry) error {
				for _, e := range es {
					if refusedCall(e) && !seen[e.ID] {
						fresh = append(fresh, e)
					}
				}
				return nil
			})
		if err != nil {
			return err
		}
		slices.SortStableFunc(fresh, func(a, b client.ExecutionLogEntry) int { return a.At.Compare(b.At) })
		for _, e := range fresh {
			if e.At.After(since) {
				since, seen = e.At, map[string]bool{}
			}
			seen[e.ID] = true
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	err := Poll(ctx, poll, poll, 0, func() (bool, error) {
		if err := read(ctx); err != nil && ctx.Err() == nil {
			return false, err
		}
		return false, nil
	})
	if _, stopped := errors.AsType[*Stopped](err); !stopped {
		return err
	}
	last, cancel := context.WithTimeout(context.WithoutCancel(ctx), lastReadTimeout)
	defer cancel()
	return read(last)
}

// lastReadTimeout bounds the read a watch makes after it was told to stop.
const lastReadTimeout = 5 * time.Second
