package rotation

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/rotate"
)

// LogOptions of `plana keys log`.
type LogOptions struct {
	IO       *iostreams.IOStreams
	StateDir func() (string, error)
	Now      func() time.Time

	Key    string
	Since  time.Duration
	Output string
}

// NewCmdLog builds `plana keys log`.
func NewCmdLog(f *cmdutil.Factory, runF func(context.Context, *LogOptions) error) *cobra.Command {
	o := &LogOptions{IO: f.IOStreams, StateDir: f.StateDir, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "log",
		Short: "The rotation log: key X rotated to Y on date D by person P, with reason",
		Long: `Show the rotation log, one line per finished step and rotation. Each line carries
the hash of the line before it; the log is checked first, and an edited, inserted
or deleted line is reported.`,
		Example: `  $ plana keys log --since 90d
  $ plana keys log --key pa_live_AB7K2XYZ -o csv`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(c.Context(), o)
			}
			return logRun(o)
		},
	}
	cmd.Flags().StringVar(&o.Key, "key", "", "only rotations of this key (id, prefix or name, old or new)")
	durationFlag(cmd, &o.Since, "since", "only entries this recent, e.g. 30d")
	cmdutil.AddOutputFlag(cmd, &o.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatCSV)
	return cmd
}

func (o *LogOptions) match(e rotate.LogEntry, now time.Time) bool {
	if o.Since > 0 && e.Time.Before(now.Add(-o.Since)) {
		return false
	}
	if o.Key == "" {
		return true
	}
	refs := []rotate.KeyRef{e.Old}
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

func logRun(o *LogOptions) error {
	ios := o.IO
	dir, err := o.StateDir()
	if err != nil {
		return err
	}
	l := rotate.OpenLog(dir)
	if err := l.Verify(); err != nil {
		return err
	}
	entries, err := l.Entries()
	if err != nil {
		return err
	}
	now := o.Now()
	var rows []rotate.LogEntry
	for _, e := range entries {
		if o.match(e, now) {
			rows = append(rows, e)
		}
	}
	newName := func(e rotate.LogEntry) string {
		if e.New == nil {
			return ""
		}
		return e.New.Name + " (" + e.New.Prefix + ")"
	}
	switch o.Output {
	case cmdutil.FormatJSON, cmdutil.FormatCSV:
		p := cmdutil.NewListPrinter(ios.Out, o.Output, []string{"time", "event", "old_prefix", "old_name", "new_prefix", "new_name", "reason", "actor"},
			func(e rotate.LogEntry) []string {
				np, nn := "", ""
				if e.New != nil {
					np, nn = e.New.Prefix, e.New.Name
				}
				return []string{e.Time.UTC().Format(time.RFC3339), e.Event, e.Old.Prefix, e.Old.Name, np, nn, e.Reason, e.Actor.String()}
			})
		for _, e := range rows {
			if err := p.Add(e); err != nil {
				return err
			}
		}
		return p.Close()
	}
	t := cmdutil.NewTablePrinter(ios, "TIME", "EVENT", "OLD KEY", "NEW KEY", "REASON", "BY")
	for _, e := range rows {
		t.AddRow(timeOrDash(e.Time), e.Event, e.Old.Name+" ("+e.Old.Prefix+")", newName(e), e.Reason, e.Actor.String())
	}
	return t.Render()
}
