package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/fleet"
	"github.com/plana-cli/plana/rotate/target"
)

// StepDeps are what the step verbs (rotate, create, deploy, verify, revoke)
// take from the Factory: the parts of a rotate.Rotator, the config its
// defaults come from, and the streams.
type StepDeps struct {
	IO        *iostreams.IOStreams
	Config    func() (*config.Config, error)
	Client    func() (*client.Client, error)
	ClientFor func(keys ...string) (*client.Client, error)
	Secrets   func() (secret.Store, error)
	StateDir  func() (string, error)
	// MachineName names this machine in each successor's lineage.
	MachineName func() (string, error)
}

func stepDeps(f *cmdutil.Factory) StepDeps {
	return StepDeps{IO: f.IOStreams, Config: f.Config, Client: f.Client, ClientFor: f.ClientFor, Secrets: f.Secrets, StateDir: f.StateDir, MachineName: f.MachineName}
}

// newStepCmd wires a verb's RunE: its own checks (validate, when set), then
// runF (tests) or run. key, when set, takes the positional KEY.
func newStepCmd[O any](cmd *cobra.Command, o *O, key *string, output *string, validate func() error,
	runF func(context.Context, *O) error, run func(context.Context, *O) error) *cobra.Command {
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 && key != nil {
			*key = args[0]
		}
		if validate != nil {
			if err := validate(); err != nil {
				return err
			}
		}
		if runF != nil {
			return runF(c.Context(), o)
		}
		return run(c.Context(), o)
	}
	cmdutil.AddOutputFlag(cmd, output, cmdutil.FormatTable, cmdutil.FormatJSON)
	return cmd
}

// checkTargets is checkTarget for each --to given, none of them empty.
func checkTargets(targets []string) error {
	for _, t := range targets {
		if t == "" {
			return cmdutil.FlagErrorf("--to needs a value: %s", target.Forms)
		}
		if err := checkTarget(t); err != nil {
			return err
		}
	}
	return nil
}

func checkTarget(to string) error {
	if to == "" {
		return nil
	}
	if _, err := target.Parse(to); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	return nil
}

// checkPrintSecret refuses a plaintext in the JSON stream, which is made
// to be kept and passed on: that is what -o json is for.
func checkPrintSecret(printSecret bool, output string) error {
	return cmdutil.MutuallyExclusive("--print-secret cannot be combined with -o json: the plaintext would go into the JSON stream; "+
		"use the keyring (plana keys secret KEY) or --print-secret without -o json", printSecret, output == cmdutil.FormatJSON)
}

// checkStdoutTarget holds --to stdout to the rule of plana keys secret: no
// plaintext on a terminal, where screens are shared and scrollback is kept,
// unless --force-tty.
func checkStdoutTarget(ios *iostreams.IOStreams, to string, forceTTY bool) error {
	if to != target.KindStdout || !ios.IsStdoutTTY() || forceTTY {
		return nil
	}
	return cmdutil.FlagErrorf("refusing to print the new key to a terminal (--to stdout): pipe it into your secrets manager " +
		"(... --to stdout | vault kv put ...), deploy it with --to env-file:PATH or --to exec:CMD, or pass --force-tty")
}

// start builds a Rotator reporting on the streams, told of the run's
// events through the profile's notify hooks and hooks (--notify), and puts
// the profile's policy (PolicyOf) under eo's flags. A configuration that
// cannot be read stops it. The caller stops the progress and closes the
// Rotator's Notify (closeNotify).
func (d StepDeps) start(ctx context.Context, eo rotate.Options, hooks []string) (*rotate.Rotator, rotate.Options, *progress, error) {
	rep := &progress{ios: d.IO}
	cfg, err := d.Config()
	if err != nil {
		return nil, eo, rep, err
	}
	r, err := newRotator(d, rep)
	if err != nil {
		return nil, eo, rep, err
	}
	if d.IO.IsStderrTTY() {
		rep.chart = trafficChart(ctx, r.API)
	}
	eo.SecretOut = d.IO.Out
	if d.IO.CanPrompt() {
		// The question names keys, whose names others chose.
		eo.Confirm = func(q string) (bool, error) { return d.IO.Confirm(textsafe.Clean(q), false) }
	}
	eo.Policy = PolicyOf(cfg)
	if r.Notify, err = notify.New(append(cfg.Notify(), hooks...), notify.Options{Warn: d.warn}); err != nil {
		return nil, eo, rep, &cmdutil.FlagError{Err: err}
	}
	return r, eo, rep, nil
}

// warn is a notify hook's warning: it comes from the hook's goroutine, so
// it is written whole, apart from the progress line.
func (d StepDeps) warn(s string) { fmt.Fprintln(d.IO.ErrOut, "warning: "+s) }

// notifyDrain is how long plana waits at its end for hooks still running.
const notifyDrain = 15 * time.Second

// closeNotify lets the hooks finish the events of the run.
func closeNotify(r *rotate.Rotator) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyDrain)
	defer cancel()
	r.Notify.Close(ctx)
}

type stepFunc func(context.Context, client.APIKey, rotate.Options) (*rotate.Result, error)

// runStep is every single-key verb's run: KEY resolved, step, its result
// printed whatever the outcome, the error mapped to an exit code.
func (d StepDeps) runStep(ctx context.Context, key, output string, eo rotate.Options, step func(*rotate.Rotator) stepFunc) error {
	r, eo, rep, err := d.start(ctx, eo, nil)
	defer rep.stop()
	if err != nil {
		return err
	}
	defer closeNotify(r)
	_, k, err := resolveKey(ctx, d.Client, key)
	if err != nil {
		return err
	}
	res, err := step(r)(ctx, *k, eo)
	rep.stop()
	if res != nil {
		if perr := printResult(d.IO, output, res); perr != nil {
			return perr
		}
	}
	return mapErr(err)
}

// printBulkSummary ends a bulk run with one row per key, so the person on
// call sees at a glance which keys still need them.
func printBulkSummary(ios *iostreams.IOStreams, res *fleet.Result) error {
	t := cmdutil.NewTablePrinter(ios, "OLD KEY", "NEW KEY", "STATE", "DETAIL", "TARGETS")
	for _, it := range res.Items {
		newKey := "-"
		if it.Result != nil && it.Result.New != nil {
			newKey = keyLabel(*it.Result.New)
		}
		targets := strings.Join(it.Targets, ", ")
		if it.Result != nil && len(it.Result.Targets) > 0 {
			var ts []string
			for _, st := range it.Result.Targets {
				ts = append(ts, st.Target+" "+targetState(st))
			}
			targets = strings.Join(ts, ", ")
		}
		t.AddRow(keyLabel(it.Old), newKey, string(it.State), textsafe.Clean(firstLine(it.Error)), textsafe.Clean(targets))
	}
	if err := t.Render(); err != nil {
		return err
	}
	if res.Planned > 0 {
		fmt.Fprintf(ios.ErrOut, "dry run: %d rotations planned, nothing changed\n", res.Planned)
		return nil
	}
	skipped := ""
	if res.Skipped > 0 {
		skipped = fmt.Sprintf(", %d skipped (no target)", res.Skipped)
	}
	fmt.Fprintf(ios.ErrOut, "%d done, %d waiting, %d failed%s\n", res.Done, res.Pending, res.Failed, skipped)
	return nil
}

// targetState is how far a rotation got at one target, in a word.
func targetState(st rotate.TargetState) string {
	switch {
	case st.Finalized:
		return "finalized"
	case st.Deployed:
		return "deployed"
	case st.Error != "":
		return "failed"
	}
	return "pending"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func printResult(ios *iostreams.IOStreams, output string, res *rotate.Result) error {
	if output == cmdutil.FormatJSON {
		return cmdutil.PrintObject(ios.Out, output, res)
	}
	cs := ios.ColorScheme()
	w := ios.ErrOut
	switch {
	case res.DryRun:
		return nil // the plan went out line by line
	case res.AlreadyRotated && res.New != nil:
		fmt.Fprintf(w, "%s already rotated on %s to %s\n", cs.SuccessIcon(), res.FinishedAt.UTC().Format(time.DateOnly), keyLabel(*res.New))
		return nil
	case res.Aborted != nil:
		fmt.Fprintf(w, "%s Called off the rotation of %s: %s revoked, the old key goes on working\n", cs.SuccessIcon(), keyLabel(res.Old), keyLabel(*res.Aborted))
		return nil
	case res.Done && res.New == nil:
		// keys revoke --force of a key no rotation replaces.
		fmt.Fprintf(w, "%s Revoked %s: no successor replaces it\n", cs.SuccessIcon(), keyLabel(res.Old))
	case res.Done:
		fmt.Fprintf(w, "%s Rotated %s to %s\n", cs.SuccessIcon(), keyLabel(res.Old), keyLabel(*res.New))
	case res.New != nil:
		fmt.Fprintf(w, "%s %s → %s: at step %s\n", cs.WarningIcon(), textsafe.Clean(res.Old.Prefix), keyLabel(*res.New), res.State)
	}
	if res.Gate != nil && !res.Gate.Passed {
		fmt.Fprintln(w, "  "+res.Gate.Summary())
		for _, s := range res.Gate.Sources {
			fmt.Fprintf(w, "    %s  %s  %s  ×%d  last %s\n", textsafe.Clean(s.SourceIP), textsafe.Clean(s.UserAgent), textsafe.Clean(s.Path),
				s.Calls, s.LastSeen.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

const stepFlagsHelp = `
Durations take Go syntax plus days: 36h, 2d, 365d.`

func addWaitFlags(cmd *cobra.Command, quiet, poll, timeout *time.Duration) {
	durationFlag(cmd, quiet, "quiet-period", "how long the old key must be unused before revoking (default: config rotation.quiet_period, else suggested from its call cadence)")
	durationFlag(cmd, poll, "poll-interval", "how often to check the execution log while waiting (default: config poll_interval)")
	durationFlag(cmd, timeout, "timeout", "stop waiting after this long, with exit code 3")
}

func addExecTimeoutFlag(cmd *cobra.Command, d *time.Duration) {
	durationFlag(cmd, d, "exec-timeout", "with --to exec:CMD: how long CMD may run before it and its children are killed (default 2m)")
}
