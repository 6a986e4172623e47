package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate"
)

// RotateOptions of `plana keys rotate`.
type RotateOptions struct {
	StepDeps

	Key          string
	Target       string
	QuietPeriod  time.Duration
	PollInterval time.Duration
	Timeout      time.Duration
	NoWait       bool
	Yes          bool
	DryRun       bool
	Force        bool
	PrintSecret  bool
	Rebuild      bool
	Emergency    string
	IssuedBy     string
	Output       string
}

// NewCmdRotate builds `plana keys rotate`.
func NewCmdRotate(f *cmdutil.Factory, runF func(context.Context, *RotateOptions) error) *cobra.Command {
	o := &RotateOptions{StepDeps: stepDeps(f)}
	cmd := newStepCmd(&cobra.Command{
		Use:   "rotate [KEY]",
		Short: "Rotate a key without downtime: the whole five-step procedure, resumable",
		Long: `Rotate KEY the way the procedure asks, without downtime:

` + stepsHelp() + `
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
	}, o, &o.Key, &o.Output, o.validate, runF, rotateRun)
	fl := cmd.Flags()
	fl.StringVar(&o.Target, "to", "", "deploy target: env-file:PATH, exec:CMD (key on stdin) or stdout")
	addWaitFlags(cmd, &o.QuietPeriod, &o.PollInterval, &o.Timeout)
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

// helpWidth is where the help's lists wrap.
const helpWidth = 78

// stepsHelp lists the procedure's steps as rotate's step table has them,
// so the help cannot drift from what rotate does.
func stepsHelp() string {
	steps := rotate.Steps()
	var b strings.Builder
	for i, s := range steps {
		end := ";"
		if i == len(steps)-1 {
			end = "."
		}
		b.WriteString(wrapItem(fmt.Sprintf("  %d. ", s.Number), s.Summary+end))
	}
	return b.String()
}

// wrapItem wraps text to helpWidth after a list marker, its further lines
// indented under the text's start.
func wrapItem(marker, text string) string {
	var b strings.Builder
	line := marker
	indent := strings.Repeat(" ", len(marker))
	for i, w := range strings.Fields(text) {
		if i > 0 && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > helpWidth {
			b.WriteString(line + "\n")
			line = indent + w
			continue
		}
		if i > 0 {
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\n")
	return b.String()
}

func (o *RotateOptions) validate() error {
	if err := checkTarget(o.Target); err != nil {
		return err
	}
	switch {
	case o.IssuedBy != "" && o.Key != "":
		return cmdutil.FlagErrorf("pass either KEY or --issued-by, not both")
	case o.IssuedBy != "" && o.Emergency == "":
		return cmdutil.FlagErrorf("--issued-by rotates every key a person issued and needs --emergency REASON (e.g. departed)")
	case o.IssuedBy == "" && o.Key == "":
		return cmdutil.FlagErrorf("KEY required: a key id, prefix or name (or --issued-by EMAIL --emergency REASON)")
	}
	if err := refuseTogether("--rebuild cannot be combined with --dry-run or --emergency", o.Rebuild, o.DryRun || o.Emergency != ""); err != nil {
		return err
	}
	if err := refuseTogether("--no-wait and --timeout cannot be used together", o.NoWait, o.Timeout > 0); err != nil {
		return err
	}
	return checkPrintSecret(o.IO, o.PrintSecret, o.Output)
}

func rotateRun(ctx context.Context, o *RotateOptions) error {
	eo := rotate.Options{Target: o.Target, QuietPeriod: o.QuietPeriod, PollInterval: o.PollInterval, Timeout: o.Timeout,
		NoWait: o.NoWait, Yes: o.Yes, DryRun: o.DryRun, Force: o.Force, PrintSecret: o.PrintSecret, Emergency: o.Emergency}
	if o.IssuedBy == "" {
		return o.runStep(ctx, o.Key, o.Output, eo, func(r *rotate.Rotator) stepFunc {
			if o.Rebuild {
				return r.Rebuild
			}
			return r.Rotate
		})
	}
	r, eo, rep, err := o.start(ctx, eo)
	defer rep.stop()
	if err != nil {
		return err
	}
	res, err := r.RotateIssuedBy(ctx, o.IssuedBy, eo)
	rep.stop()
	if res != nil {
		if o.Output == cmdutil.FormatJSON {
			if perr := cmdutil.PrintObject(o.IO.Out, o.Output, res); perr != nil {
				return perr
			}
		} else if perr := printBulkSummary(o.IO, res); perr != nil {
			return perr
		}
	}
	return mapErr(err)
}
