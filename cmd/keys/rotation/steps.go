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

// Which part of the procedure a command runs.
const (
	modeRotate = "rotate"
	modeCreate = "create"
	modeDeploy = "deploy"
	modeVerify = "verify"
	modeRevoke = "revoke"
)

// StepOptions are the flags of rotate, create, deploy, verify and revoke.
type StepOptions struct {
	Factory *cmdutil.Factory
	Mode    string

	Key          string
	Target       string
	QuietPeriod  time.Duration
	PollInterval time.Duration
	Timeout      time.Duration
	NoWait       bool
	Wait         bool // verify --wait
	Yes          bool
	DryRun       bool
	Force        bool
	Finalize     bool
	PrintSecret  bool
	Rebuild      bool
	Emergency    string
	IssuedBy     string
	Output       string
}

func newStepCmd(f *cmdutil.Factory, mode string, runF func(context.Context, *StepOptions) error, cmd *cobra.Command) (*cobra.Command, *StepOptions) {
	opts := &StepOptions{Factory: f, Mode: mode}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			opts.Key = args[0]
		}
		if mode == modeCreate && opts.Key == "" {
			return cmdutil.FlagErrorf("--like KEY required: the key whose scopes and name to follow")
		}
		if err := opts.validate(); err != nil {
			return err
		}
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return stepRun(c.Context(), opts)
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON)
	return cmd, opts
}

func (o *StepOptions) validate() error {
	if o.Target != "" {
		if _, err := rotate.ParseTarget(o.Target); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
	}
	switch {
	case o.Mode == modeRotate && o.IssuedBy != "" && o.Key != "":
		return cmdutil.FlagErrorf("pass either KEY or --issued-by, not both")
	case o.Mode == modeRotate && o.IssuedBy != "" && o.Emergency == "":
		return cmdutil.FlagErrorf("--issued-by rotates every key a person issued and needs --emergency REASON (e.g. departed)")
	case o.Mode == modeRotate && o.IssuedBy == "" && o.Key == "":
		return cmdutil.FlagErrorf("KEY required: a key id, prefix or name (or --issued-by EMAIL --emergency REASON)")
	case o.Rebuild && (o.DryRun || o.Emergency != ""):
		return cmdutil.FlagErrorf("--rebuild cannot be combined with --dry-run or --emergency")
	case o.NoWait && o.Timeout > 0:
		return cmdutil.FlagErrorf("--no-wait and --timeout cannot be used together")
	case o.Mode == modeDeploy && o.Target == "" && !o.Finalize:
		return cmdutil.FlagErrorf("--to TARGET required: env-file:PATH, exec:CMD or stdout")
	case o.PrintSecret && o.Factory.IOStreams.IsStdoutTTY() && o.Output == cmdutil.FormatJSON:
		return cmdutil.FlagErrorf("--print-secret cannot be mixed with -o json on the same stdout")
	}
	return nil
}

func (o *StepOptions) engineOptions() rotate.Options {
	ios := o.Factory.IOStreams
	eo := rotate.Options{Target: o.Target, QuietPeriod: o.QuietPeriod, PollInterval: o.PollInterval, Timeout: o.Timeout,
		NoWait: o.NoWait, Yes: o.Yes, DryRun: o.DryRun, Force: o.Force, Finalize: o.Finalize, PrintSecret: o.PrintSecret,
		Emergency: o.Emergency, SecretOut: ios.Out}
	if o.Mode == modeVerify {
		eo.NoWait = !o.Wait
	}
	if ios.CanPrompt() {
		eo.Confirm = func(q string) (bool, error) { return ios.Confirm(q, false) }
	}
	return eo
}

func stepRun(ctx context.Context, o *StepOptions) error {
	ios := o.Factory.IOStreams
	rep := &progress{ios: ios}
	defer rep.stop()
	r, err := newRotator(o.Factory, rep)
	if err != nil {
		return err
	}
	if ios.IsStderrTTY() {
		rep.chart = trafficChart(ctx, r.API)
	}
	eo := o.engineOptions()
	if cfg, err := o.Factory.Config(); err == nil {
		if q, ok := cfg.QuietPeriod(); ok && eo.QuietPeriod == 0 {
			eo.QuietPeriod = q
		}
		if eo.PollInterval == 0 {
			eo.PollInterval = cfg.PollInterval()
		}
	}
	if o.IssuedBy != "" {
		res, err := r.RotateIssuedBy(ctx, o.IssuedBy, eo)
		rep.stop()
		if res != nil {
			if o.Output == cmdutil.FormatJSON {
				if perr := cmdutil.PrintObject(ios.Out, o.Output, res); perr != nil {
					return perr
				}
			} else if perr := printBulkSummary(ios, res); perr != nil {
				return perr
			}
		}
		return mapErr(err)
	}
	api, err := o.Factory.Client()
	if err != nil {
		return err
	}
	key, err := cmdutil.ResolveKey(ctx, api, o.Key)
	if err != nil {
		return mapErr(err)
	}
	var res *rotate.Result
	switch {
	case o.Rebuild:
		res, err = r.Rebuild(ctx, *key, eo)
	case o.Mode == modeCreate:
		res, err = r.Create(ctx, *key, eo)
	case o.Mode == modeDeploy:
		res, err = r.Deploy(ctx, *key, eo)
	case o.Mode == modeVerify:
		res, err = r.Verify(ctx, *key, eo)
	case o.Mode == modeRevoke:
		res, err = r.Revoke(ctx, *key, eo)
	default:
		res, err = r.Rotate(ctx, *key, eo)
	}
	rep.stop()
	if res != nil {
		if perr := printResult(o, res); perr != nil {
			return perr
		}
	}
	return mapErr(err)
}

// printBulkSummary ends a bulk run with one row per key, so the person on
// call sees at a glance which keys still need them.
func printBulkSummary(ios *iostreams.IOStreams, res *rotate.BulkResult) error {
	t := cmdutil.NewTablePrinter(ios, "OLD KEY", "NEW KEY", "STATE", "DETAIL")
	for _, it := range res.Items {
		newKey := "-"
		if it.Result != nil && it.Result.New != nil {
			newKey = it.Result.New.Name + " (" + it.Result.New.Prefix + ")"
		}
		t.AddRow(it.Old.Name+" ("+it.Old.Prefix+")", newKey, it.State, it.Error)
	}
	if err := t.Render(); err != nil {
		return err
	}
	if res.Planned > 0 {
		fmt.Fprintf(ios.ErrOut, "dry run: %d rotations planned, nothing changed\n", res.Planned)
		return nil
	}
	fmt.Fprintf(ios.ErrOut, "%d done, %d waiting, %d failed\n", res.Done, res.Pending, res.Failed)
	return nil
}

func printResult(o *StepOptions, res *rotate.Result) error {
	ios := o.Factory.IOStreams
	if o.Output == cmdutil.FormatJSON {
		return cmdutil.PrintObject(ios.Out, o.Output, res)
	}
	cs := ios.ColorScheme()
	w := ios.ErrOut
	switch {
	case res.DryRun:
		return nil // the plan went out line by line
	case res.Done:
		fmt.Fprintf(w, "%s Rotated %s (%s) to %s (%s)\n", cs.SuccessIcon(), res.Old.Name, res.Old.Prefix, res.New.Name, res.New.Prefix)
	case res.New != nil:
		fmt.Fprintf(w, "%s %s → %s (%s): at step %s\n", cs.WarningIcon(), res.Old.Prefix, res.New.Name, res.New.Prefix, res.Step)
	}
	if res.Gate != nil && !res.Gate.Passed {
		fmt.Fprintln(w, "  "+res.Gate.Summary())
		for _, s := range res.Gate.Sources {
			fmt.Fprintf(w, "    %s  %s  %s  ×%d  last %s\n", s.SourceIP, s.UserAgent, s.Path, s.Calls, s.LastSeen.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

const stepFlagsHelp = `
Durations take Go syntax plus days: 36h, 2d, 365d.`

func addWaitFlags(cmd *cobra.Command, o *StepOptions) {
	durationFlag(cmd, &o.QuietPeriod, "quiet-period", "how long the old key must be unused before revoking (default: config rotation.quiet_period, else suggested from its call cadence)")
	durationFlag(cmd, &o.PollInterval, "poll-interval", "how often to check the execution log while waiting (default: config poll_interval)")
	durationFlag(cmd, &o.Timeout, "timeout", "stop waiting after this long, with exit code 3")
}

// NewCmdRotate builds `plana keys rotate`.
func NewCmdRotate(f *cmdutil.Factory, runF func(context.Context, *StepOptions) error) *cobra.Command {
	cmd, o := newStepCmd(f, modeRotate, runF, &cobra.Command{
		Use:   "rotate [KEY]",
		Short: "Rotate a key without downtime: the whole five-step procedure, resumable",
		Long: `Rotate KEY the way the procedure asks, without downtime:

  1. create a new key with the same scopes, named with the current year,
     its plaintext straight into the OS keyring;
  2. deploy it alongside the old one (--to env-file:PATH | exec:CMD | stdout);
  3. wait until the new key is used and the old one has been quiet for the
     quiet period (server time), saying where the old key is still used from;
  4. after confirmation (--yes in scripts), leave only the new key;
  5. revoke the old key, check it is refused, and log the rotation.

Run it again and it resumes where it stopped. With --no-wait it stops at step 3
with exit code 3, so a cron job can run it daily until it exits 0.

--emergency REASON (compromise, departed, lost-device, or your words) revokes the
old key right after the new one exists, before any deploy. With --issued-by
EMAIL it rotates every active key that person issued.` + stepFlagsHelp,
		Example: `  $ plana keys rotate "Nightly stock sync (2025)" --to env-file:/etc/stock-sync.env
  $ plana keys rotate pa_live_AB7K2XYZ --to exec:'vault kv put secret/sync PLANA_KEY_NEW=-' --no-wait --yes
  $ plana keys rotate pa_live_AB7K2XYZ --emergency compromise --to env-file:.env
  $ plana keys rotate --issued-by ben@example.com --emergency departed --no-wait`,
		Args: cobra.MaximumNArgs(1),
	})
	fl := cmd.Flags()
	fl.StringVar(&o.Target, "to", "", "deploy target: env-file:PATH, exec:CMD (key on stdin) or stdout")
	addWaitFlags(cmd, o)
	fl.BoolVar(&o.NoWait, "no-wait", false, "check the gate of step 3 once; not met: exit 3")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "confirm step 4 without asking")
	fl.BoolVar(&o.DryRun, "dry-run", false, "say what each step would do, change nothing")
	fl.BoolVar(&o.Force, "force", false, "revoke even though the gate does not hold (loudly)")
	fl.StringVar(&o.Emergency, "emergency", "", "revoke the old key at once: compromise, departed, lost-device or free text")
	fl.StringVar(&o.IssuedBy, "issued-by", "", "with --emergency: rotate every active key issued by this email")
	fl.BoolVar(&o.PrintSecret, "print-secret", false, "print the new plaintext once to stdout (for use without a keyring)")
	fl.BoolVar(&o.Rebuild, "rebuild", false, "rebuild a damaged rotation journal from what the server knows")
	return cmd
}

// NewCmdCreate builds `plana keys create --like KEY`.
func NewCmdCreate(f *cmdutil.Factory, runF func(context.Context, *StepOptions) error) *cobra.Command {
	cmd, o := newStepCmd(f, modeCreate, runF, &cobra.Command{
		Use:   "create --like KEY",
		Short: "Step 1: create a key like another, plaintext straight into the keyring",
		Long: `Create a new key with the same scopes and description as KEY, named like it with
the current year ("Nightly stock sync (2026)"). The plaintext goes into the OS
keyring only (plana keys secret prints it). A create whose answer is lost is
recovered on the next run, never duplicated.`,
		Example: `  $ plana keys create --like "Nightly stock sync (2025)"`,
		Args:    cmdutil.NoArgs,
	})
	cmd.Flags().StringVar(&o.Key, "like", "", "the key to follow (id, prefix or name)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would be created, change nothing")
	cmd.Flags().BoolVar(&o.PrintSecret, "print-secret", false, "print the new plaintext once to stdout")
	return cmd
}

// NewCmdDeploy builds `plana keys deploy KEY --to TARGET`.
func NewCmdDeploy(f *cmdutil.Factory, runF func(context.Context, *StepOptions) error) *cobra.Command {
	cmd, o := newStepCmd(f, modeDeploy, runF, &cobra.Command{
		Use:   "deploy KEY --to TARGET",
		Short: "Step 2: hand the new key to the automation (step 4 with --finalize)",
		Long: `Deploy the new key of KEY's rotation (KEY may name the old or the new key):

  env-file:PATH  adds PLANA_KEY_NEW=… next to PLANA_KEY; every other line is kept
                 byte for byte; atomic write, mode 0600
  exec:CMD       runs CMD with sh -c, the key on its stdin (never in argv or env)
  stdout         prints the key once

Deploying the same key again changes nothing. --finalize (step 4) leaves only the
new key, under PLANA_KEY.`,
		Example: `  $ plana keys deploy pa_live_AB7K2XYZ --to env-file:/etc/stock-sync.env
  $ plana keys deploy pa_live_AB7K2XYZ --finalize`,
		Args: cmdutil.ExactArgs(1, "KEY"),
	})
	cmd.Flags().StringVar(&o.Target, "to", "", "env-file:PATH, exec:CMD or stdout")
	cmd.Flags().BoolVar(&o.Finalize, "finalize", false, "step 4: leave only the new key")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would be deployed, change nothing")
	return cmd
}

// NewCmdVerify builds `plana keys verify KEY [--wait]`.
func NewCmdVerify(f *cmdutil.Factory, runF func(context.Context, *StepOptions) error) *cobra.Command {
	cmd, o := newStepCmd(f, modeVerify, runF, &cobra.Command{
		Use:   "verify KEY [--wait]",
		Short: "Step 3: is the new key in use and the old one quiet?",
		Long: `Check the gate of step 3 in the server's time: the new key used since it was
created, and the old key unused for the quiet period. While the old key is still
used it lists where from (source IP, user agent, path, count). Not met: exit 3.
--wait polls until it holds (or --timeout).` + stepFlagsHelp,
		Example: `  $ plana keys verify pa_live_AB7K2XYZ
  $ plana keys verify pa_live_AB7K2XYZ --wait --timeout 2d`,
		Args: cmdutil.ExactArgs(1, "KEY"),
	})
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "poll until the gate holds")
	addWaitFlags(cmd, o)
	return cmd
}

// NewCmdRevoke builds `plana keys revoke KEY`.
func NewCmdRevoke(f *cmdutil.Factory, runF func(context.Context, *StepOptions) error) *cobra.Command {
	cmd, o := newStepCmd(f, modeRevoke, runF, &cobra.Command{
		Use:   "revoke KEY",
		Short: "Step 5: revoke the old key, refused while the gate does not hold",
		Long: `Revoke KEY. Refused (exit 3) while the gate of step 3 does not hold, unless
--force. Afterwards plana checks the key is refused (when its plaintext is in the
keyring), deletes its plaintext from the keyring and logs the rotation.
A revoked key can never be re-enabled.`,
		Example: `  $ plana keys revoke pa_live_AB7K2XYZ --yes`,
		Args:    cmdutil.ExactArgs(1, "KEY"),
	})
	durationFlag(cmd, &o.QuietPeriod, "quiet-period", "how long the key must have been unused")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&o.Force, "force", false, "revoke even though the gate does not hold (loudly)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would happen, change nothing")
	return cmd
}
