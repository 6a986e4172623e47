// Package rotation holds the rotation commands of `plana keys`: rotate and
// its single steps (create, deploy, verify, revoke), status, log and due.
// They only wire flags and output to package rotate, so the guided path and
// the manual one run the same code.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/gate"
)

// NewCmds builds the rotation commands for the keys parent.
func NewCmds(f *cmdutil.Factory) []*cobra.Command {
	return []*cobra.Command{
		NewCmdRotate(f, nil), NewCmdCreate(f, nil), NewCmdDeploy(f, nil), NewCmdVerify(f, nil), NewCmdRevoke(f, nil),
		NewCmdStatus(f, nil), NewCmdLog(f, nil), NewCmdWatch(f, nil), NewCmdDue(f, nil),
	}
}

// durationValue is a flag taking Go durations plus days ("36h", "2d").
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil || *v.d == 0 {
		return ""
	}
	return config.FormatDuration(*v.d)
}
func (v durationValue) Type() string { return "duration" }
func (v durationValue) Set(s string) error {
	d, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("must be positive")
	}
	*v.d = d
	return nil
}

func durationFlag(cmd *cobra.Command, d *time.Duration, name, usage string) {
	cmd.Flags().Var(durationValue{d}, name, usage)
}

// progress is the rotate.Reporter on an IOStreams: a spinner while waiting
// on a TTY, one line per change otherwise; steps and notes on stderr.
type progress struct {
	ios     *iostreams.IOStreams
	p       *iostreams.Progress
	waiting string

	// chart, when set (a person at a TTY), reads the two keys' calls per
	// hour; it is redrawn at most every chartEvery, and only when it changed.
	chart     func(gate.Report) (string, error)
	chartAt   time.Time
	chartText string
}

const chartEvery = time.Minute

// GateChecked keeps a spinner's text current (the engine writes a line
// only when something changed, which a pipe wants and a spinner does not)
// and draws the old and the new key's traffic while step 3 waits.
func (r *progress) GateChecked(rep gate.Report) {
	if r.p != nil && r.ios.IsStderrTTY() {
		r.waiting = textsafe.Clean("waiting: " + rep.Summary())
		r.p.Update(r.waiting)
	}
	if r.chart == nil || rep.New == nil || time.Since(r.chartAt) < chartEvery {
		return
	}
	r.chartAt = time.Now()
	text, err := r.chart(rep)
	if err != nil || text == r.chartText {
		return
	}
	r.chartText = text
	waiting := r.waiting
	r.stop()
	fmt.Fprintf(r.ios.ErrOut, "Calls per hour, last %d h (oldest to now):\n%s", cmdutil.ChartHours(rep.NewCreatedAt, rep.Now), text)
	if waiting != "" {
		r.Waiting(waiting)
	}
}

// trafficChart is the chart of a progress on a TTY.
func trafficChart(ctx context.Context, api *client.Client) func(gate.Report) (string, error) {
	return func(rep gate.Report) (string, error) {
		hours := cmdutil.ChartHours(rep.NewCreatedAt, rep.Now)
		oldCalls, err := cmdutil.KeyCallsPerHour(ctx, api, rep.Old.ID, rep.Now, hours)
		if err != nil {
			return "", err
		}
		newCalls, err := cmdutil.KeyCallsPerHour(ctx, api, rep.New.ID, rep.Now, hours)
		if err != nil {
			return "", err
		}
		return cmdutil.RotationChart(
			cmdutil.KeyTraffic{Label: "old", Prefix: rep.Old.Prefix, CallsPerHour: oldCalls},
			cmdutil.KeyTraffic{Label: "new", Prefix: rep.New.Prefix, CallsPerHour: newCalls}), nil
	}
}

func (r *progress) stop() {
	r.waiting = ""
	if r.p != nil {
		r.p.Stop()
		r.p = nil
	}
}

// The engine's words hold what others chose (key names, request paths,
// user agents): every line is made safe for a terminal on its way out.

func (r *progress) Step(name string) {
	r.stop()
	fmt.Fprintln(r.ios.ErrOut, r.ios.ColorScheme().Bold(textsafe.Clean(name)))
}

func (r *progress) Waiting(text string) {
	text = textsafe.Clean(text)
	r.waiting = text
	if r.p == nil {
		r.p = r.ios.StartProgress(text)
		return
	}
	r.p.Update(text)
}

func (r *progress) Info(text string) {
	r.stop()
	fmt.Fprintln(r.ios.ErrOut, "  "+textsafe.Clean(text))
}

func (r *progress) Warn(text string) {
	r.stop()
	fmt.Fprintf(r.ios.ErrOut, "%s %s\n", r.ios.ColorScheme().WarningIcon(), textsafe.Clean(text))
}

// newRotator wires a Rotator to what the Factory gave a step verb.
func newRotator(d StepDeps, rep rotate.Reporter) (*rotate.Rotator, error) {
	api, err := d.Client()
	if err != nil {
		return nil, err
	}
	store, err := d.Secrets()
	if err != nil {
		return nil, err
	}
	dir, err := d.StateDir()
	if err != nil {
		return nil, err
	}
	machine, err := d.MachineName()
	if err != nil {
		return nil, err
	}
	return &rotate.Rotator{API: api, ClientFor: d.ClientFor, Secrets: store, StateDir: dir, Reporter: rep, MachineName: machine}, nil
}

// resolveKey is the client and the key KEY names (id, prefix or name), the
// error mapped to an exit code.
func resolveKey(ctx context.Context, newClient func() (*client.Client, error), key string) (*client.Client, *client.APIKey, error) {
	api, err := newClient()
	if err != nil {
		return nil, nil, err
	}
	k, err := cmdutil.ResolveKey(ctx, api, key)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	return api, k, nil
}

// mapErr turns the engine's typed errors into the CLI's exit codes.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rotate.ErrConfirmRequired), errors.Is(err, rotate.ErrUsage):
		return &cmdutil.FlagError{Err: err}
	case errors.Is(err, context.Canceled):
		// Ctrl-C: the engine's words say where it stopped and how to go on.
		return &cmdutil.ExitError{Code: cmdutil.ExitCancel, Err: err}
	case errors.Is(err, rotate.ErrPending):
		return &cmdutil.PendingError{Err: err}
	case errors.Is(err, client.ErrUnauthenticated):
		return &cmdutil.AuthError{Err: err}
	}
	return err
}
