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

// NewCmdStatus builds `plana keys status`.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	o := &StatusOptions{IO: f.IOStreams, StateDir: f.StateDir, Client: f.Client, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Rotations under way: their step, what they wait for, since when",
		Long: `List the rotations under way on this machine: their step, what each waits for,
since when. Then, for the keys revoked in the last 7 days, the calls still presenting
them since their revoke (refused with 401), by source IP, user agent and path: the
places the old key is still configured.`,
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
	if o.Output == cmdutil.FormatJSON {
		return cmdutil.PrintObject(ios.Out, o.Output, items)
	}
	now := o.Now()
	if len(items) == 0 {
		fmt.Fprintln(ios.ErrOut, "No rotation under way.")
	} else {
		t := cmdutil.NewTablePrinter(ios, "OLD KEY", "NEW KEY", "STEP", "WAITING FOR", "SINCE")
		for _, it := range items {
			nk := "-"
			if it.New != nil {
				nk = keyLabel(*it.New)
			}
			t.AddRow(keyLabel(it.Old), nk, it.State.String(), textsafe.Clean(it.WaitingOn), cmdutil.FuzzyAgo(now, it.Since))
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	return printRecentRefused(ctx, o)
}

// printRecentRefused lists the calls refused since the revoke of each key
// revoked lately: the step-5 signal, for anyone who looks later.
func printRecentRefused(ctx context.Context, o *StatusOptions) error {
	ios := o.IO
	api, err := o.Client()
	if err != nil {
		return nil // not logged in: the local rotations were the answer
	}
	keys, err := api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusRevoked, PageSize: 1000})
	if err != nil {
		fmt.Fprintf(ios.ErrOut, "%s refused calls since the revoke: %v\n", ios.ColorScheme().WarningIcon(), err)
		return nil
	}
	now := o.Now()
	if t, ok := api.ServerNow(); ok {
		now = t
	}
	for _, k := range keys {
		if k.RevokedAt == nil || now.Sub(*k.RevokedAt) > refusedWindow {
			continue
		}
		srcs, err := gate.RefusedCalls(ctx, api, k.ID, *k.RevokedAt)
		if err != nil {
			return mapErr(err)
		}
		if len(srcs) == 0 {
			continue
		}
		fmt.Fprintf(ios.Out, "\nRefused since the revoke of %s on %s, still configured at:\n", keyLabel(ref.Of(k)), k.RevokedAt.UTC().Format(time.DateOnly))
		t := cmdutil.NewTablePrinter(ios, "SOURCE IP", "USER AGENT", "PATH", "CALLS", "LAST SEEN")
		for _, s := range srcs {
			t.AddRow(textsafe.Clean(s.SourceIP), textsafe.Clean(s.UserAgent), textsafe.Clean(s.Path), fmt.Sprint(s.Calls), cmdutil.FuzzyAgo(now, s.LastSeen))
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
