package rotation

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/atomicfile"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate/fleet"
)

// DueOptions of `plana keys due`.
type DueOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Client func() (*client.Client, error)
	Now    func() time.Time

	Within time.Duration
	ICS    string
	Output string
}

// NewCmdDue builds `plana keys due`.
func NewCmdDue(f *cmdutil.Factory, runF func(context.Context, *DueOptions) error) *cobra.Command {
	o := &DueOptions{IO: f.IOStreams, Config: f.Config, Client: f.Client, Now: f.Now, Within: 30 * 24 * time.Hour}
	cmd := &cobra.Command{
		Use:   "due",
		Short: "Keys past or near their rotation cadence (exit 5 when any is due)",
		Long: `List the active keys past their rotation date (created_at + rotation.cadence,
per-name overrides applied) or due within --within, and keys unused for 90 days
(candidates for revoking rather than rotating). Exit code 5 when any is listed,
0 otherwise, so a scheduled job can alert on it. --ics writes calendar reminders
(RFC 5545, CRLF lines): one event per key on its due date, or today when it is
overdue; an alarm a week before, or at the next full hour when that is past;
stable UIDs so that importing a newer file updates the events.`,
		Example: `  $ plana keys due --within 60d
  $ plana keys due --ics ~/key-rotations.ics`,
		Args: cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(c.Context(), o)
			}
			return dueRun(c.Context(), o)
		},
	}
	durationFlag(cmd, &o.Within, "within", "also list keys due this soon")
	cmd.Flags().StringVar(&o.ICS, "ics", "", "write calendar reminders for the listed keys to this file")
	cmdutil.AddOutputFlag(cmd, &o.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatCSV)
	return cmd
}

func dueRun(ctx context.Context, o *DueOptions) error {
	ios := o.IO
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	api, err := o.Client()
	if err != nil {
		return err
	}
	keys, err := api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusActive, PageSize: 1000})
	if err != nil {
		return mapErr(err)
	}
	now, ok := api.ServerNow()
	if !ok {
		now = o.Now()
	}
	items := fleet.Due(keys, now, fleet.DueOptions{Policy: PolicyOf(cfg), Within: o.Within})
	if o.ICS != "" {
		var cal bytes.Buffer
		if err := fleet.WriteICS(&cal, items, now); err != nil {
			return err
		}
		// A calendar is for others to subscribe to: readable by all.
		if err := atomicfile.WriteFile(o.ICS, cal.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(ios.ErrOut, "Wrote %d reminders to %s\n", len(items), o.ICS)
	}
	switch o.Output {
	case cmdutil.FormatJSON, cmdutil.FormatCSV:
		p := cmdutil.NewListPrinter(ios.Out, o.Output, []string{"id", "prefix", "name", "due_at", "overdue", "unused"},
			func(it fleet.DueItem) []string {
				return []string{it.Key.ID, it.Key.Prefix, it.Key.Name, it.DueAt.UTC().Format(time.RFC3339), fmt.Sprint(it.Overdue), fmt.Sprint(it.Unused)}
			})
		for _, it := range items {
			if err := p.Add(it); err != nil {
				return err
			}
		}
		if err := p.Close(); err != nil {
			return err
		}
	default:
		if len(items) == 0 {
			fmt.Fprintln(ios.ErrOut, "No key is due.")
			return nil
		}
		t := cmdutil.NewTablePrinter(ios, "NAME", "PREFIX", "DUE", "STATE", "LAST USED")
		for _, it := range items {
			lu := "never"
			if it.LastUsed != nil {
				lu = cmdutil.Ago(now, *it.LastUsed)
			}
			t.AddRow(textsafe.Clean(it.Key.Name), textsafe.Clean(it.Key.Prefix), it.DueAt.UTC().Format("2006-01-02"), it.State(), lu)
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if len(items) > 0 {
		return &cmdutil.ExitError{Code: cmdutil.ExitDue, Err: cmdutil.ErrSilent}
	}
	return nil
}
