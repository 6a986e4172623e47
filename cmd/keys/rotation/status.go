package rotation

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

// StatusOptions of `plana keys status`.
type StatusOptions struct {
	IO       *iostreams.IOStreams
	StateDir func() (string, error)
	Client   func() (*client.Client, error)
	Now      func() time.Time

	Output string
}

// refusedWindow is how far back keys status looks for keys revoked whose
// refused calls are worth showing.
const refusedWindow = 7 * 24 * time.Hour

// Where a rotation of keys status was found.
const (
	statusLocal  = "local"  // this machine's journal
	statusServer = "server" // the server's keys only: another machine's
)

// StatusResult is `plana keys status -o json`: what the table shows.
type StatusResult struct {
	// Rotations are this machine's rotations under way (from its
	// journals), then those the server shows that it has no journal of.
	Rotations []StatusRotation `json:"rotations"`
	// Claimants are active keys that claim to replace an active key and
	// are not believed: plana ignores them.
	Claimants []lineage.Claimant `json:"claimants"`
	// RefusedSinceRevoke are, for each key revoked in the last 7 days, the
	// calls still presenting it since, by source.
	RefusedSinceRevoke []RefusedKey `json:"refused_since_revoke"`
}

// StatusRotation is one rotation under way. Source says where it was
// found; one seen on the server only has no step (the server does not know
// how far the machine that started it got) and names who started it where.
type StatusRotation struct {
	rotate.StatusItem
	Source    string `json:"source"`
	StartedBy string `json:"started_by,omitempty"`
	Host      string `json:"host,omitempty"`
}

// RefusedKey is a key revoked lately and the calls refused since.
type RefusedKey struct {
	Key       ref.Key       `json:"key"`
	RevokedAt time.Time     `json:"revoked_at"`
	Sources   []gate.Source `json:"sources"`
}

// NewCmdStatus builds `plana keys status`.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	o := &StatusOptions{IO: f.IOStreams, StateDir: f.StateDir, Client: f.Client, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Rotations under way: their step, what they wait for, since when",
		Long: `List the rotations under way: this machine's, with their step, what each waits for
and since when; then those the server shows (a trusted successor of an active key)
that another machine started, with who started them and where. Keys that claim to
replace another without being trusted are listed apart, with why: plana ignores them.
Then, for the keys revoked in the last 7 days, the calls still presenting them since
their revoke (refused with 401), by source IP, user agent and path: the places the
old key is still configured.`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(c.Context(), o)
			}
			return statusRun(c.Context(), o)
		},
	}
	cmdutil.AddOutputFlag(cmd, &o.Output, cmdutil.FormatTable, cmdutil.FormatJSON)
	return cmd
}

func statusRun(ctx context.Context, o *StatusOptions) error {
	ios := o.IO
	dir, err := o.StateDir()
	if err != nil {
		return err
	}
	items, errs := rotate.Status(dir)
	for _, e := range errs {
		fmt.Fprintf(ios.ErrOut, "%s %v\n", ios.ColorScheme().WarningIcon(), e)
	}
	res := StatusResult{Rotations: []StatusRotation{}, Claimants: []lineage.Claimant{}, RefusedSinceRevoke: []RefusedKey{}}
	for _, it := range items {
		res.Rotations = append(res.Rotations, StatusRotation{StatusItem: it, Source: statusLocal})
	}
	// BOS's present, zero until it is read: the journals are stamped in
	// BOS's time, and measuring them against this machine's clock would
	// mix two clocks.
	var now time.Time
	if api, err := o.Client(); err == nil {
		// Not logged in: the local rotations are the answer.
		if now, err = fromServer(ctx, o, api, &res); err != nil {
			return err
		}
	}
	if o.Output == cmdutil.FormatJSON {
		return cmdutil.PrintObject(ios.Out, o.Output, res)
	}
	return printStatus(ios, res, now)
}

// fromServer adds what the server tells: the rotations under way that no
// journal here knows, the claimants, the calls refused since recent
// revokes. It returns the server's present, zero when it sent none. A
// server that cannot be read is a warning: the local rotations are still
// the answer.
func fromServer(ctx context.Context, o *StatusOptions, api *client.Client, res *StatusResult) (time.Time, error) {
	ios := o.IO
	me, err := api.Me(ctx)
	var keys []client.APIKey
	if err == nil {
		keys, err = api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	}
	if err != nil {
		fmt.Fprintf(ios.ErrOut, "%s reading the server (rotations started elsewhere, refused calls): %v\n", ios.ColorScheme().WarningIcon(), err)
		return time.Time{}, nil
	}
	present, _ := api.ServerNow()
	now := present
	if now.IsZero() {
		now = o.Now() // only to pick the recent revokes
	}
	local := map[string]bool{}
	for _, r := range res.Rotations {
		local[r.Old.ID] = true
		if r.New != nil {
			local[r.New.ID] = true
		}
	}
	f := lineage.NewFamily(keys, me.User)
	for _, k := range keys {
		if !k.Active() {
			continue
		}
		for _, c := range f.Claimants(k.ID) {
			if c.Key.Active() {
				res.Claimants = append(res.Claimants, c)
			}
		}
		if local[k.ID] {
			continue
		}
		if nw, ok := f.Kept(k.ID); ok && nw.Active() && !local[nw.ID] {
			res.Rotations = append(res.Rotations, elsewhere(k, nw, f))
		}
	}
	for _, k := range keys {
		if k.RevokedAt == nil || now.Sub(*k.RevokedAt) > refusedWindow {
			continue
		}
		srcs, err := gate.RefusedCalls(ctx, api, k.ID, *k.RevokedAt)
		if err != nil {
			return present, mapErr(err)
		}
		if len(srcs) > 0 {
			res.RefusedSinceRevoke = append(res.RefusedSinceRevoke, RefusedKey{Key: ref.Of(k), RevokedAt: *k.RevokedAt, Sources: srcs})
		}
	}
	return present, nil
}

// elsewhere is the rotation of old to nw that the server shows and no
// journal here knows: another machine's, which any machine carries on.
func elsewhere(old, nw client.APIKey, f *lineage.Family) StatusRotation {
	n := ref.Of(nw)
	r := StatusRotation{Source: statusServer, StartedBy: nw.CreatedBy.Email, StatusItem: rotate.StatusItem{
		Old: ref.Of(old), New: &n, Since: nw.CreatedAt, NewCreatedAt: nw.CreatedAt}}
	if c, ok := f.Claim(nw.ID); ok {
		r.Host, r.Reason = c.Host, c.Reason
	}
	where := r.StartedBy
	if r.Host != "" {
		where += " on " + r.Host
	}
	r.WaitingOn = fmt.Sprintf("started by %s, no journal here: plana keys rotate %s carries it on", where, old.ID)
	return r
}

// printStatus shows res; now is BOS's present, zero when it was not read
// (then times show as absolute, in UTC).
func printStatus(ios *iostreams.IOStreams, res StatusResult, now time.Time) error {
	if len(res.Rotations) == 0 {
		fmt.Fprintln(ios.ErrOut, "No rotation under way.")
	} else {
		t := cmdutil.NewTablePrinter(ios, "OLD KEY", "NEW KEY", "STEP", "WAITING FOR", "SINCE")
		for _, it := range res.Rotations {
			nk, step := "-", it.State.String()
			if it.New != nil {
				nk = keyLabel(*it.New)
			}
			if it.Source == statusServer {
				step = "elsewhere"
			}
			t.AddRow(keyLabel(it.Old), nk, step, textsafe.Clean(it.WaitingOn), cmdutil.Ago(now, it.Since))
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if len(res.Claimants) > 0 {
		fmt.Fprintf(ios.Out, "\nNot trusted, ignored: keys that claim to replace another\n")
		t := cmdutil.NewTablePrinter(ios, "CLAIMANT", "CLAIMS TO REPLACE", "CREATED BY", "WHY NOT TRUSTED")
		for _, c := range res.Claimants {
			t.AddRow(keyLabel(ref.Of(c.Key)), keyLabel(c.Old), textsafe.Clean(c.Key.CreatedBy.Email+" ("+c.Key.CreatedBy.Role+")"), textsafe.Clean(c.Why()))
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	for _, r := range res.RefusedSinceRevoke {
		fmt.Fprintf(ios.Out, "\nRefused since the revoke of %s on %s, still configured at:\n", keyLabel(r.Key), r.RevokedAt.UTC().Format(time.DateOnly))
		t := cmdutil.NewTablePrinter(ios, "SOURCE IP", "USER AGENT", "PATH", "CALLS", "LAST SEEN")
		for _, s := range r.Sources {
			t.AddRow(textsafe.Clean(s.SourceIP), textsafe.Clean(s.UserAgent), textsafe.Clean(s.Path), fmt.Sprint(s.Calls), cmdutil.Ago(now, s.LastSeen))
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	return nil
}

// keyLabel is "NAME (PREFIX)", safe for a terminal whatever the name holds.
func keyLabel(k ref.Key) string {
	return textsafe.Clean(k.Name + " (" + k.Prefix + ")")
}

// timeOrDash formats a time for tables.
func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
