package rotation

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/rotate"
)

// StatusOptions of `plana keys status`.
type StatusOptions struct {
	IO       *iostreams.IOStreams
	StateDir func() (string, error)
	Now      func() time.Time

	Output string
}

// NewCmdStatus builds `plana keys status`.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	o := &StatusOptions{IO: f.IOStreams, StateDir: f.StateDir, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Rotations under way: their step, what they wait for, since when",
		Args:  cmdutil.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if runF != nil {
				return runF(c.Context(), o)
			}
			return statusRun(o)
		},
	}
	cmdutil.AddOutputFlag(cmd, &o.Output, cmdutil.FormatTable, cmdutil.FormatJSON)
	return cmd
}

func statusRun(o *StatusOptions) error {
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
	if len(items) == 0 {
		fmt.Fprintln(ios.ErrOut, "No rotation under way.")
		return nil
	}
	t := cmdutil.NewTablePrinter(ios, "OLD KEY", "NEW KEY", "STEP", "WAITING FOR", "SINCE")
	now := o.Now()
	for _, it := range items {
		nk := "-"
		if it.New != nil {
			nk = it.New.Name + " (" + it.New.Prefix + ")"
		}
		t.AddRow(it.Old.Name+" ("+it.Old.Prefix+")", nk, string(it.Step), it.WaitingOn, cmdutil.FuzzyAgo(now, it.Since))
	}
	return t.Render()
}

// timeOrDash formats a time for tables.
func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
