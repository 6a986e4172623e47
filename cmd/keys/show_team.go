package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/lineage"
)

// LineageKey is one key of a line of descent.
type LineageKey struct {
	ID        string     `json:"id" yaml:"id"`
	Name      string     `json:"name" yaml:"name"`
	Prefix    string     `json:"prefix" yaml:"prefix"`
	Status    string     `json:"status" yaml:"status"`
	CreatedAt time.Time  `json:"created_at" yaml:"created_at"`
	CreatedBy string     `json:"created_by" yaml:"created_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty" yaml:"revoked_at,omitempty"`
}

// Lineage is the keys a key replaced, oldest first, and the keys that
// replaced it, nearest first, from the server's descriptions (or the
// year-suffix names of keys made by hand), as far as they are believed
// (lineage.Successors). What is not believed is shown apart: the keys that
// claim to replace this one, and this key's own claim.
type Lineage struct {
	Predecessors []LineageKey       `json:"predecessors" yaml:"predecessors"`
	Successors   []LineageKey       `json:"successors" yaml:"successors"`
	Claimants    []lineage.Claimant `json:"claimants,omitempty" yaml:"claimants,omitempty"`
	Claim        *lineage.Claimant  `json:"untrusted_claim,omitempty" yaml:"untrusted_claim,omitempty"`
}

func lineageKeys(ks []client.APIKey) []LineageKey {
	out := make([]LineageKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, LineageKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Status: k.Status, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy.Email, RevokedAt: k.RevokedAt})
	}
	return out
}

// teamView reads k's line of descent as the caller believes it, the claims
// that are not believed, and, once k is revoked, the calls refused since:
// the places it is still configured.
func teamView(ctx context.Context, c *client.Client, k client.APIKey) (*Lineage, []gate.Source, error) {
	me, err := c.Me(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("checking the management key: %w", err)
	}
	all, err := c.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	if err != nil {
		return nil, nil, fmt.Errorf("listing keys for the line of descent: %w", err)
	}
	f := lineage.NewFamily(all, me.User)
	preds, succs := f.Chain(k.ID)
	var lin *Lineage
	claimants := f.Claimants(k.ID)
	own, doubted := f.Doubted(k.ID)
	if len(preds)+len(succs)+len(claimants) > 0 || doubted {
		lin = &Lineage{Predecessors: lineageKeys(preds), Successors: lineageKeys(succs), Claimants: claimants}
		if doubted {
			lin.Claim = &own
		}
	}
	if k.RevokedAt == nil {
		return lin, nil, nil
	}
	refused, err := gate.RefusedCalls(ctx, c, k.ID, *k.RevokedAt)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the calls refused since the revoke: %w", err)
	}
	return lin, refused, nil
}

func printTeamView(ios *iostreams.IOStreams, res ShowResult, now time.Time) error {
	w := ios.Out
	if l := res.Lineage; l != nil {
		for _, p := range l.Predecessors {
			fmt.Fprintf(w, "  Replaces:   %s (%s), %s\n", p.Name, p.Prefix, p.Status)
		}
		for _, s := range l.Successors {
			fmt.Fprintf(w, "  Replaced by: %s (%s), %s, created %s by %s\n", s.Name, s.Prefix, s.Status, s.CreatedAt.UTC().Format(time.DateOnly), s.CreatedBy)
		}
		cs := ios.ColorScheme()
		for _, c := range l.Claimants {
			k := c.Key
			fmt.Fprintf(w, "  %s %s (%s), %s, created %s by %s (%s), claims to replace this key: NOT TRUSTED, ignored: %s\n", cs.WarningIcon(), k.Name, k.Prefix, k.Status,
				k.CreatedAt.UTC().Format(time.DateOnly), k.CreatedBy.Email, roleOf(k.CreatedBy), c.Why())
		}
		if c := l.Claim; c != nil {
			fmt.Fprintf(w, "  %s Claims to replace %s (%s): NOT TRUSTED, ignored: %s\n", cs.WarningIcon(), c.Old.Name, c.Old.Prefix, c.Why())
		}
	}
	if res.Key.RevokedAt == nil {
		return nil
	}
	fmt.Fprintf(w, "\nRefused since the revoke (401: places that still have this key):\n")
	if len(res.RefusedSinceRevoke) == 0 {
		fmt.Fprintln(w, "  none")
		return nil
	}
	t := cmdutil.NewTablePrinter(ios, "Source IP", "User agent", "Path", "Calls", "Last seen")
	for _, s := range res.RefusedSinceRevoke {
		last := cmdutil.Ago(now, s.LastSeen)
		if !ios.IsStdoutTTY() {
			last = s.LastSeen.UTC().Format(time.RFC3339)
		}
		t.AddRow(s.SourceIP, s.UserAgent, s.Path, fmt.Sprint(s.Calls), last)
	}
	return t.Render()
}

// roleOf is a user's role as output shows it.
func roleOf(u client.User) string {
	if u.Role == "" {
		return "role unknown"
	}
	return u.Role
}
