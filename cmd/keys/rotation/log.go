package rotation

import (
	"context"
	"errors"
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

Each line of the local log carries the hash of the line before it, keyed with
a key in the keyring, which also keeps how many entries the log had and its
last hash. The log is checked first: an edited, inserted or deleted line, a
cut tail or an older copy put back is reported, and plana keys log exits 1
(after showing the server's history), so a cron check notices. Lines it cannot
verify here (no keyring, as under cron or ssh; lines appended without one) are
shown marked unverified, with why, and do not change the exit code.`,
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
	durationFlag(cmd, &o.Since, "since", "only entries this recent by BOS's clock (this machine's with --source local), e.g. 30d")
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

// localHistory is this machine's log, checked first; warn hears what
// could not be verified here, and what the log says was lost.
func (o *LogOptions) localHistory(warn func(string)) ([]rotlog.HistoryRow, error) {
	dir, err := o.StateDir()
	if err != nil {
		return nil, err
	}
	// The chain's key lives in the keyring; without one the keyed lines
	// cannot be checked, and Check says so rather than passing them.
	var keys secret.Store
	if o.Secrets != nil {
		keys, _ = o.Secrets()
	}
	l := rotate.OpenLog(dir, keys, warn)
	c, err := l.Check()
	if err != nil {
		return nil, err
	}
	if c.Unverified > 0 {
		warn(fmt.Sprintf("%d of the %d lines of this machine's rotation log could not be verified here: %s. They are shown as unverified; the server's history is not affected",
			c.Unverified, len(c.Entries), c.Why))
	}
	for _, e := range c.Restarted {
		warn(fmt.Sprintf("this machine's rotation log began anew on %s: %s", e.Time.UTC().Format(time.RFC3339), e.Reason))
	}
	return rotlog.LocalHistory(c.Entries), nil
}

// serverHistory is what the server's keys tell, for every machine, and
// the server's present (zero if it sent none).
func (o *LogOptions) serverHistory(ctx context.Context) ([]rotlog.HistoryRow, time.Time, error) {
	api, err := o.Client()
	if err != nil {
		return nil, time.Time{}, err
	}
	me, err := api.Me(ctx)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("checking the management key: %w", err)
	}
	keys, err := api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("reading the server's history: %w", err)
	}
	present, _ := api.ServerNow()
	return rotlog.ServerHistory(keys, me.User), present, nil
}

func logRun(ctx context.Context, o *LogOptions) error {
	ios := o.IO
	warn := func(msg string) {
		fmt.Fprintf(ios.ErrOut, "%s %s\n", ios.ColorScheme().WarningIcon(), textsafe.Clean(msg))
	}
	var local, server []rotlog.HistoryRow
	var localErr, err error
	var present time.Time
	if o.Source != sourceServer {
		local, localErr = o.localHistory(warn)
		if localErr != nil && o.Source == sourceLocal {
			return localErr
		}
	}
	if o.Source != sourceLocal {
		server, present, err = o.serverHistory(ctx)
		switch {
		case err != nil && (o.Source == sourceServer || localErr != nil):
			return errors.Join(localErr, mapErr(err))
		case err != nil:
			// This machine's log is still worth showing.
			warn(fmt.Sprintf("%v; showing this machine's log only", err))
		}
	}
	// Both sides are stamped in BOS's time: --since counts back from its
	// present, and from this machine's clock only when BOS was not read.
	if present.IsZero() {
		present = o.Now()
	}
	if err := o.print(rotlog.MergeHistory(local, server), present); err != nil {
		return err
	}
	// A log that was tampered with fails the command once the server's
	// history is out: a cron check sees exit 1.
	return localErr
}

// print writes the rows that match the filters, --since counted back from
// now.
func (o *LogOptions) print(all []rotlog.HistoryRow, now time.Time) error {
	ios := o.IO
	var rows []rotlog.HistoryRow
	for _, e := range all {
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
				return []string{e.Time.UTC().Format(time.RFC3339), e.Event, e.Old.Prefix, e.Old.Name, np, nn, e.Reason, e.Actor.String(), sourceLabel(e)}
			})
		for _, e := range rows {
			if err := p.Add(e); err != nil {
				return err
			}
		}
		return p.Close()
	}
	t := cmdutil.NewTablePrinter(ios, "TIME (UTC)", "EVENT", "OLD KEY", "NEW KEY", "REASON", "BY", "SOURCE")
	for _, e := range rows {
		nk := ""
		if e.New != nil {
			nk = keyLabel(*e.New)
		}
		t.AddRow(timeOrDash(e.Time), e.Event, keyLabel(e.Old), nk, textsafe.Clean(e.Reason), textsafe.Clean(e.Actor.String()), sourceLabel(e))
	}
	return t.Render()
}

// sourceLabel is a row's source as the table and CSV show it: a local line
// that could not be verified here says so.
func sourceLabel(e rotlog.HistoryRow) string {
	if e.Unverified {
		return e.Source + " (unverified)"
	}
	return e.Source
}
