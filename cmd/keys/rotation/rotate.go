package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/rotate"
)

// RotateOptions of `plana keys rotate`: which keys (KEY, --due, --issued-by
// or --stored-on, one mode), what to do with them, the flags that are each
// rotation's first layer of settings, and how each run goes. rotateRun
// resolves them once into a rotateContext that every mode reads.
type RotateOptions struct {
	StepDeps

	// Which keys and what to do: one mode (see mode).
	Key      string
	IssuedBy string
	StoredOn string
	Due      bool
	Abort    bool
	Rebuild  bool

	// Settings are --to, --quiet-period, --poll-interval and --exec-timeout:
	// over the key's rule and the profile (rotate.Policy.Resolve), and
	// refused where they differ from what a rotation under way recorded,
	// unless ResetSettings.
	Settings      rotate.Settings
	ResetSettings bool

	// How each rotation runs.
	Timeout     time.Duration
	NoWait      bool
	Yes         bool
	DryRun      bool
	Force       bool
	PrintSecret bool
	ForceTTY    bool
	Emergency   string
	Reason      string
	Parallel    int
	// WatchAfterRevoke: nil until --watch-after-revoke is given, then the
	// default is a terminal's (defaultWatchAfterRevoke) or a script's (0).
	WatchAfterRevoke *time.Duration

	Notify []string
	Output string
}

// rotateMode is which keys a run of keys rotate takes, and what it does to
// them.
type rotateMode int

const (
	modeKey      rotateMode = iota // KEY: the procedure
	modeAbort                      // KEY --abort
	modeRebuild                    // KEY --rebuild
	modeDue                        // --due
	modeIssuedBy                   // --issued-by EMAIL
	modeDeparted                   // --issued-by EMAIL --emergency REASON
	modeStoredOn                   // --stored-on HOST --emergency REASON
)

// defaultWatchAfterRevoke is how long step 5 watches for refused calls when
// a person is at the terminal; scripts ask for a watch with the flag.
const defaultWatchAfterRevoke = 30 * time.Second

// NewCmdRotate builds `plana keys rotate`.
func NewCmdRotate(f *cmdutil.Factory, runF func(context.Context, *RotateOptions) error) *cobra.Command {
	o := &RotateOptions{StepDeps: stepDeps(f)}
	cmd := newStepCmd(&cobra.Command{
		Use:   "rotate [KEY]",
		Short: "Rotate a key without downtime: the whole five-step procedure, resumable",
		Long: `Rotate KEY the way the procedure asks, without downtime:

` + stepsHelp() + `
Run it again and it resumes where it stopped, with the targets and quiet period
it recorded when it began, whatever the configuration says since; a --to or
--quiet-period that differs from them is refused (exit 2), and --reset-settings
decides them again on purpose. With --no-wait it stops at step 3 with exit
code 3, so a cron job can run it daily until it exits 0.

--emergency REASON (compromise, departed, lost-device, or your words) revokes the
old key right after the new one exists, before any deploy.

--to may be given several times (regions, instances): the new key is deployed
to each, then finalized at each; a target that fails is retried alone by the
next run. An env file is refused before anything is created when it sits in (or
below) a directory every user may write without the sticky bit, or when its
PLANA_KEY holds another key. What a failing exec: command writes to stderr is
shown here only, never stored. Without --to, the key's targets come from the
profile's rotation.targets, the first entry whose match (a glob) fits its name.
Every setting is decided the same way for KEY, --due and --issued-by: the flag,
else that entry's, else the profile's; a quiet period none of them sets is
suggested from the old key's call cadence.

--due rotates, or carries on, every key past its cadence that has targets in
rotation.targets, --parallel at a time (a rotation waiting on its gate does not
take a slot); due keys without a target are listed and skipped. Exit 0 when all
are done, 3 while any waits, 1 when any failed. --issued-by EMAIL runs the
gated procedure on every active key that person issued, each to its own
targets; with --emergency it revokes first, and revokes their management keys
that have no target last.

--stored-on HOST --emergency lost-device rotates every key whose plaintext
plana put into HOST's keyring (as its trusted lineage says; HOST matched
without regard to case), revokes the successors of rotations under way there,
revokes last the management keys plana used there (the last 90 days of the
execution log), and lists the keys nothing places. Both emergencies show the
whole plan first (with --dry-run, only the plan), ask before revoking the
management keys (--yes in scripts), and skip the one this run uses, saying
what replaces it.

--notify exec:CMD runs CMD once per event (started, created, deployed,
waiting, verified, finalized, revoked, refused-after-revoke, failed,
interrupted, aborted) with one JSON line on its stdin and never key material;
so does the profile's notify (a hook in both runs once).

The server is the source of truth: the new key's description records its lineage,
so a rotation started on another machine (or a CI runner) is carried on, never
duplicated; when machines start at once, the successor created first wins and the
others revoke theirs. After the revoke, step 5 watches the execution log for
--watch-after-revoke (default 30s on a terminal, none in scripts) and reports the
calls that still present the old key, by source. --abort calls a rotation off
before the revoke.` + stepFlagsHelp,
		Example: `  $ plana keys rotate "Nightly stock sync (2025)" \
      --to env-file:/etc/stock-sync.env
  $ plana keys rotate pa_live_AB7K2XYZ --no-wait --yes \
      --to exec:'vault kv put secret/sync PLANA_KEY_NEW=-'
  $ plana keys rotate "Nightly stock sync (2025)" --no-wait --yes \
      --to 'k8s:stock-sync/stock-sync-key?rollout=deployment/stock-sync'
  $ plana keys rotate pa_live_AB7K2XYZ --emergency compromise \
      --to env-file:.env
  $ plana keys rotate "Nightly stock sync (2025)" \
      --to env-file:/srv/eu.env --to env-file:/srv/us.env
  $ plana keys rotate --due --no-wait --yes \
      --notify 'exec:/usr/local/bin/plana-slack'
  $ plana keys rotate --issued-by ben@example.com --yes
  $ plana keys rotate --issued-by ben@example.com \
      --emergency departed --no-wait
  $ plana keys rotate --stored-on ana-laptop \
      --emergency lost-device --dry-run
  $ plana keys rotate pa_live_AB7K2XYZ --abort --reason "wrong scopes" \
      --to env-file:.env`,
		Args: cobra.MaximumNArgs(1),
	}, o, &o.Key, &o.Output, o.validate, runF, rotateRun)
	fl := cmd.Flags()
	fl.StringArrayVar(&o.Settings.Targets, "to", nil, "deploy target: env-file:PATH, exec:CMD (key on stdin), exec-ab:CMD, stdout, or a secret store: k8s:[CONTEXT@]NAMESPACE/NAME[?rollout=KIND/NAME], aws-sm:SECRET_ID, aws-ssm:PATH, sops:PATH, pass:PATH (docs/targets.md); repeat for several")
	addWaitFlags(cmd, &o.Settings.QuietPeriod, &o.Settings.PollInterval, &o.Timeout)
	addExecTimeoutFlag(cmd, &o.Settings.ExecTimeout)
	fl.BoolVar(&o.NoWait, "no-wait", false, "do not wait for the gate of step 3: not met, exit 3 (met is confirmed by a second look one poll interval later)")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "confirm step 4 without asking (--stored-on, --issued-by --emergency: the management keys' revoke)")
	fl.BoolVar(&o.DryRun, "dry-run", false, "say what each step would do, change nothing")
	fl.BoolVar(&o.Force, "force", false, "revoke even though the gate does not hold (loudly)")
	fl.StringVar(&o.Emergency, "emergency", "", "revoke the old key at once: compromise, departed, lost-device or free text")
	fl.StringVar(&o.IssuedBy, "issued-by", "", "rotate every active key issued by this email (gated; revoke-first with --emergency)")
	fl.StringVar(&o.StoredOn, "stored-on", "", "with --emergency: rotate every key whose plaintext plana put into this machine's keyring (its machine_name)")
	fl.BoolVar(&o.Due, "due", false, "rotate or carry on every due key that has targets in rotation.targets")
	fl.IntVar(&o.Parallel, "parallel", 4, "with --due, --issued-by or --stored-on: how many keys create, deploy or revoke at once")
	fl.StringArrayVar(&o.Notify, "notify", nil, "exec:CMD told of every rotation event, one JSON line on its stdin; repeatable")
	fl.BoolVar(&o.PrintSecret, "print-secret", false, "print the new plaintext once to stdout (for use without a keyring)")
	fl.BoolVar(&o.ForceTTY, "force-tty", false, "with --to stdout: print the new key even when stdout is a terminal")
	fl.BoolVar(&o.ResetSettings, "reset-settings", false, "decide the targets and quiet period of a rotation under way again (flags, rule, profile) instead of keeping those it recorded")
	fl.BoolVar(&o.Rebuild, "rebuild", false, "rebuild a damaged rotation journal from what the server knows")
	fl.BoolVar(&o.Abort, "abort", false, "call the rotation off before the revoke: take PLANA_KEY_NEW out of the target, revoke the new key")
	fl.StringVar(&o.Reason, "reason", "", "why: recorded in the log and the new key's description (default scheduled; with --abort, called off)")
	fl.Var(&optionalDuration{d: &o.WatchAfterRevoke}, "watch-after-revoke", "after the revoke, watch this long for calls still presenting the old key (0: not at all)")
	return cmd
}

// optionalDuration is a duration flag that may be 0 and knows whether it
// was given.
type optionalDuration struct{ d **time.Duration }

func (v *optionalDuration) String() string {
	if v.d == nil || *v.d == nil {
		return ""
	}
	return config.FormatDuration(**v.d)
}
func (v *optionalDuration) Type() string { return "duration" }
func (v *optionalDuration) Set(s string) error {
	d, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("must not be negative")
	}
	*v.d = &d
	return nil
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
	if err := checkTargets(o.Settings.Targets); err != nil {
		return err
	}
	for _, h := range o.Notify {
		if _, err := notify.ParseHook(h); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
	}
	if o.Key == "" && o.IssuedBy == "" && !o.Due && o.StoredOn == "" {
		return cmdutil.FlagErrorf("KEY required: a key id, prefix or name (or --issued-by EMAIL, --stored-on HOST, or --due)")
	}
	for _, rule := range []struct {
		msg string
		set []bool
	}{
		{"pass one of KEY, --issued-by, --stored-on or --due", []bool{o.Key != "", o.IssuedBy != "", o.Due, o.StoredOn != ""}},
		{"--due takes each key's targets from the profile's rotation.targets, not --to", []bool{o.Due, len(o.Settings.Targets) > 0}},
		{"--due rotates on a cadence, not in an emergency: use --issued-by EMAIL --emergency REASON, or KEY --emergency REASON", []bool{o.Due, o.Emergency != ""}},
		{"--rebuild cannot be combined with --dry-run or --emergency", []bool{o.Rebuild, o.DryRun || o.Emergency != ""}},
		{"--no-wait and --timeout cannot be used together", []bool{o.NoWait, o.Timeout > 0}},
		{"--abort calls a rotation off: it cannot be combined with --dry-run, --emergency, --issued-by, --stored-on, --due, --rebuild, --reset-settings, --force or --print-secret",
			[]bool{o.Abort, o.DryRun || o.Emergency != "" || o.IssuedBy != "" || o.StoredOn != "" || o.Due || o.Rebuild || o.ResetSettings || o.Force || o.PrintSecret}},
	} {
		if err := cmdutil.MutuallyExclusive(rule.msg, rule.set...); err != nil {
			return err
		}
	}
	if o.Parallel < 1 {
		return cmdutil.FlagErrorf("--parallel must be at least 1")
	}
	if err := o.validateStoredOn(); err != nil {
		return err
	}
	for _, t := range o.Settings.Targets {
		if err := checkStdoutTarget(o.IO, t, o.ForceTTY); err != nil {
			return err
		}
	}
	return checkPrintSecret(o.PrintSecret, o.Output)
}

// mode is the one mode validate let through.
func (o *RotateOptions) mode() rotateMode {
	switch {
	case o.Due:
		return modeDue
	case o.StoredOn != "":
		return modeStoredOn
	case o.IssuedBy != "" && o.Emergency != "":
		return modeDeparted
	case o.IssuedBy != "":
		return modeIssuedBy
	case o.Abort:
		return modeAbort
	case o.Rebuild:
		return modeRebuild
	}
	return modeKey
}

func (o *RotateOptions) watchAfterRevoke() time.Duration {
	switch {
	case o.WatchAfterRevoke != nil:
		return *o.WatchAfterRevoke
	case o.IO.IsStderrTTY():
		return defaultWatchAfterRevoke
	}
	return 0
}
