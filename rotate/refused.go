package rotate

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/plana-cli/plana/client"
)

// RefusedSource is one place that still presents a revoked key: the seed's
// step-5 signal of where the old key is still configured.
type RefusedSource struct {
	SourceIP  string    `json:"source_ip" yaml:"source_ip"`
	UserAgent string    `json:"user_agent" yaml:"user_agent"`
	Path      string    `json:"path" yaml:"path"`
	Calls     int       `json:"calls" yaml:"calls"`
	FirstSeen time.Time `json:"first_seen" yaml:"first_seen"`
	LastSeen  time.Time `json:"last_seen" yaml:"last_seen"`
}

// TallyRefused groups the refused (401) entries among es by source IP, user
// agent and path, busiest first.
func TallyRefused(es []client.ExecutionLogEntry) []RefusedSource {
	by := map[[3]string]*RefusedSource{}
	for _, e := range es {
		if e.Status != http.StatusUnauthorized {
			continue
		}
		k := [3]string{e.SourceIP, e.UserAgent, e.Path}
		s := by[k]
		if s == nil {
			s = &RefusedSource{SourceIP: e.SourceIP, UserAgent: e.UserAgent, Path: e.Path, FirstSeen: e.At, LastSeen: e.At}
			by[k] = s
		}
		s.Calls++
		if e.At.Before(s.FirstSeen) {
			s.FirstSeen = e.At
		}
		if e.At.After(s.LastSeen) {
			s.LastSeen = e.At
		}
	}
	out := make([]RefusedSource, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b RefusedSource) int {
		if a.Calls != b.Calls {
			return b.Calls - a.Calls
		}
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.SourceIP, b.SourceIP), cmp.Compare(a.UserAgent, b.UserAgent), cmp.Compare(a.Path, b.Path))
	})
	return out
}

// maxRefusedEntries bounds how much of the log a look at refused calls
// reads: a forgotten worker retrying in a tight loop logs a call per try.
const maxRefusedEntries = 20000

// RefusedCalls reads the calls refused for key since the time given (its
// revoke), grouped by source.
func RefusedCalls(ctx context.Context, api *client.Client, keyID string, since time.Time) ([]RefusedSource, error) {
	var refused []client.ExecutionLogEntry
	err := api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: since, PageSize: logPageSize, Limit: maxRefusedEntries},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				if e.Status == http.StatusUnauthorized {
					refused = append(refused, e)
				}
			}
			return nil
		})
	return TallyRefused(refused), err
}

// WatchRefused follows the calls refused for key from since on, calling fn
// once for each new one, oldest first, every poll until ctx ends. The end of
// ctx (Ctrl-C, the end of a watch window) is not an error: one last read,
// on a short leash of its own, reports what came in since the last poll.
func WatchRefused(ctx context.Context, api *client.Client, keyID string, since time.Time, poll time.Duration, fn func(client.ExecutionLogEntry) error) error {
	seen := map[string]bool{} // entries at the boundary: since is inclusive
	read := func(ctx context.Context) error {
		var fresh []client.ExecutionLogEntry
		err := api.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: since, PageSize: logPageSize, Limit: maxRefusedEntries},
			func(es []client.ExecutionLogEntry) error {
				for _, e := range es {
					if e.Status == http.StatusUnauthorized && !seen[e.ID] {
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
	for {
		if ctx.Err() != nil {
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), lastReadTimeout)
			defer cancel()
			return read(last)
		}
		if err := read(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// lastReadTimeout bounds the read a watch makes after it was told to stop.
const lastReadTimeout = 5 * time.Second
