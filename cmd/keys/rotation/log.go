package rotation

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// LogOptions of `plana keys log`.
type LogOptions struct {
	IO       *iostreams.IOStreams
	StateDir func() (string, error)
	Client   func() (*client.Client, error)
	Secrets  func() (secret.Store, error)
	Now      func() time.Time

	Key    string
	Since  time.Duration
	Source string
	Output string
}

// Values of --source.
const (
	sourceAll    = "all"
	sourceLocal  = "local"
	sourceServer = "server"
)

// NewCmdLog builds `plana keys log`.
func NewCmdLog(f *cmdutil.Factory, runF func(context.Context, *LogOptions) error) *cobra.Command {
	o := &LogOptions{IO: f.IOStreams, StateDir: f.StateDir, Client: f.Client, Secrets: f.Secrets, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "log",
		Short: "The rotation log: key X rotated to Y on date D by person P, with reason",
		Long: `Show the team's rotation history, oldest first: this machine's rotation log
merged with what the server records for every machine (each new key's lineage in
its description, who created and who revoked each key, when). A fact both saw is
one line; SOURCE says where each line comes from (local, server, local+server).
--source local or --source server shows one side.

Each line of the local log carries the hash of the line before it; the log is
checked first, and an edited, inserted or deleted line is reported.`,
		Example: `  $ plana keys log --since 90d
  $ plana keys log --source server
  $ plana keys log --key pa_live_AB7K2XYZ -o csv`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			switch o.Source {
			case sourceAll, sourceLocal, sourceServer:
			default:
				return cmdutil.FlagErrorf("invalid --source %q: want server, local or all", o.Source)
			}
			if runF != nil {
				return runF(c.Context(), o)
			}
			return logRun(c.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Key, "key", "", "only rotations of this key (id, prefix or name, old or new)")
	durationFlag(cmd, &o.Since, "since", "only entries this recent, e.g. 30d")
	cmd.Flags().StringVar(&o.Source, "source", sourceAll, "whose history: server, local (this machine's log) or all")
	cmdutil.AddOutputFlag(cmd, &o.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatCSV)
	return cmd
}

func (o *LogOptions) match(e rotlog.HistoryRow, now time.Time) bool {
	if o.Since > 0 && e.Time.Before(now.Add(-o.Since)) {
		return false
	}
	if o.Key == "" {
		return true
	}
	refs := []ref.Key{e.Old}
	if e.New != nil {
		refs = append(refs, *e.New)
	}
	for _, r := range refs {
		if o.Key == r.ID || o.Key == r.Prefix || o.Key == r.Name {
			return true
		}
	}
	return false
}

// localHistory is this machine's log, its chain checked first.
func (o *LogOptions) localHistory() ([]rotlog.HistoryRow, error) {
	dir, err := o.StateDir()
	if err != nil {
		return nil, err
	}
	// The chain's key lives in the keyring; without one a keyed log cannot
	// be checked, and Verify says so rather than passing it.
	var keys secret.Store
	if o.Secrets != nil {
		keys, _ = o.Secrets()
	}
	warn := func(msg string) { fmt.Fprintf(o.IO.ErrOut, "%s %s\n", o.IO.ColorScheme().WarningIcon(), msg) }
	l := rotate.OpenLog(dir, keys, warn)
	if err := l.Verify(); err != nil {
		return nil, err
	}
	entries, err := l.Entries()
	return rotlog.LocalHistory(entries), err
}

// serverHistory is what the server's keys tell, for every machine.
func (o *LogOptions) serverHistory(ctx context.Context) ([]rotlog.HistoryRow, error) {
	api, err := o.Client()
	if err != nil {
		return nil, err
	}
	me, err := api.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("checking the management key: %w", err)
	}
	keys, err := api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	if err != nil {
		return nil, fmt.Errorf("reading the server's history: %w", err)
	}
	return rotlog.ServerHistory(keys, me.User), nil
}

func logRun(ctx context.Context, o *LogOptions) error {
	ios := o.IO
	var local, server []rotlog.HistoryRow
	var err error
	if o.Source != sourceServer {
		if local, err = o.localHistory(); err != nil {
			return err
		}
	}
	if o.Source != sourceLocal {
		server, err = o.serverHistory(ctx)
		switch {
		case err != nil && o.Source == sourceServer:
			return mapErr(err)
		case err != nil:
			// This machine's log is still worth showing.
			fmt.Fprintf(ios.ErrOut, "%s %v; showing this machine's log only\n", ios.ColorScheme().WarningIcon(), err)
		}
	}
	now := o.Now()
	var rows []rotlog.HistoryRow
	for _, e := range rotlog.MergeHistory(local, server) {
		if o.match(e, now) {
			rows = append(rows, e)
		}
	}
	switch o.Output {
	case cmdutil.FormatJSON, cmdutil.FormatCSV:
		p := cmdutil.NewListPrinter(ios.Out, o.Output, []string{"time", "event", "old_prefix", "old_name", "new_prefix", "new_name", "reason", "actor", "source"},
			func(e rotlog.HistoryRow) []string {
				np, nn := "", ""
				if e.New != nil {
					np, nn = e.New.Prefix, e.New.Name
				}
				return []string{e.Time.UTC().Format(time.RFC3339), e.Event, e.Old.Prefix, e.Old.Name, np, nn, e.Reason, e.Actor.String(), e.Source}
			})
		for _, e := range rows {
			if err := p.Add(e); err != nil {
				return err
			}
		}
		return p.Close()
	}
	t := cmdutil.NewTablePrinter(ios, "TIME", "EVENT", "OLD KEY", "NEW KEY", "REASON", "BY", "SOURCE")
	for _, e := range rows {
		nk := ""
		if e.New != nil {
			nk = keyLabel(*e.New)
		}
		t.AddRow(timeOrDash(e.Time), e.Event, keyLabel(e.Old), nk, textsafe.Clean(e.Reason), textsafe.Clean(e.Actor.String()), e.Source)
	}
	return t.Render()
}
