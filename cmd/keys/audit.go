package keys

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/keys/rotation"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/audit"
	"github.com/plana-cli/plana/rotate/fleet"
)

// AuditOptions of `plana keys audit`.
type AuditOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Client func() (*client.Client, error)
	// RotateFlagged runs the emergency rotation of the flagged keys
	// (--rotate); the command has asked first.
	RotateFlagged func(context.Context, []client.APIKey, rotation.EmergencyOptions) (*fleet.Result, error)

	Keys     []string
	All      bool
	Since    time.Duration
	Baseline time.Duration
	Rotate   bool
	Yes      bool
	Timeout  time.Duration
	Notify   []string
	Output   string
}

// AuditResult is `plana keys audit -o json`: the report, and with --rotate
// the emergency rotations it ran.
type AuditResult struct {
	*audit.Report
	Rotation *fleet.Result `json:"rotation,omitempty"`
}

// emergencyReason is the reason --rotate gives its rotations.
const emergencyReason = rotate.ReasonCompromise

// NewCmdAudit builds `plana keys audit`.
func NewCmdAudit(f *cmdutil.Factory, runF func(context.Context, *AuditOptions) error) *cobra.Command {
	opts := &AuditOptions{IO: f.IOStreams, Config: f.Config, Client: f.Client,
		RotateFlagged: func(ctx context.Context, keys []client.APIKey, eo rotation.EmergencyOptions) (*fleet.Result, error) {
			return rotation.RotateEmergency(ctx, f, keys, eo)
		}}
	var since, baseline, timeout string
	cmd := &cobra.Command{
		Use:   "audit [KEY...]",
		Short: "Calls you didn't make: each key's execution log against its own baseline (exit 6 when anything is flagged)",
		Long: fmt.Sprintf(`Audit the execution log for calls you didn't make. For each key, the calls of the
last --since (default 24h) are judged against the key's own usual sources over the
--baseline before them (default 30d): its source IP ranges (/24 for IPv4, /64 for
IPv6), user-agent products (the version ignored), methods and path shapes (ids
collapsed), hours of the day and volume. Flagged:

  new-source             calls from an IP range never seen in the baseline
  new-user-agent         calls from a user-agent product never seen
  new-path               a method and path the key never called (an automation
                         key calling /v1/api-keys)
  burst                  an hour with more than %d times the busiest baseline
                         hour's calls, and at least %d more
  idle-key-used          a key with no call in the whole baseline is used
  revoked-key-presented  refused calls (401) presenting a revoked key from a
                         source it was never used from: someone trying a leaked key

Each finding names the calls (first and last time, count, source IP, user agent,
path) and why they are unusual. A key with too little history to judge (fewer than
%d calls in the baseline, or younger than %s) is reported as such, with its
calls, and does not count as flagged. plana's own reads (who am I, the key list,
the log) are no key's usage and are passed over; its writes are audited like any
caller's.

The log is read once, page by page, for every key audited, in server time (the
Date header of BOS's answers, not this machine's clock). Expected changes (a new
region, a new client version) go in the profile's audit.allow:

  audit:
    allow:
      - match: "Nightly stock sync*"       # a glob on the key's name
        source_ip: 198.51.100.0/24         # a CIDR or one address
      - match: "*"
        user_agent: "stock-sync-go/*"      # * matches anything, / included

Exit code 6 when anything is flagged, 0 when nothing is. --notify exec:CMD (and
the profile's notify) gets a "suspicious" event per finding, one JSON line on its
stdin, never key material. --rotate runs the emergency rotation of every flagged
active key (as "plana keys rotate KEY --emergency compromise"), each to its
targets in rotation.targets, after a confirmation on a terminal or with --yes:
the key is revoked at once, so what uses it fails until it has the new one. With
--rotate, a rotation that failed exits 1, one still waiting for its new key in
use (--timeout) exits 3; "plana keys rotate KEY" carries it on.`,
			audit.BurstFactor, audit.BurstMargin, audit.MinBaselineCalls, config.FormatDuration(audit.MinHistory)),
		Example: `  $ plana keys audit --all
  $ plana keys audit "Nightly stock sync (2025)" \
      --since 7d --baseline 60d
  $ plana keys audit --all --since 1h -o json
  $ plana keys audit --all --rotate --yes \
      --notify 'exec:/usr/local/bin/plana-slack'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Keys = args
			if err := opts.parse(since, baseline, timeout); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return auditRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.All, "all", false, "audit every key of the workspace, revoked ones included")
	fl.StringVar(&since, "since", "24h", "the audited window: the calls of this long before now")
	fl.StringVar(&baseline, "baseline", "30d", "how far before the audited window to learn each key's usual sources")
	fl.BoolVar(&opts.Rotate, "rotate", false, "run the emergency rotation (--emergency compromise) of every flagged active key")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "with --rotate: rotate without asking")
	fl.StringVar(&timeout, "timeout", "", "with --rotate: how long each rotation waits for its new key in use (default: no limit)")
	fl.StringArrayVar(&opts.Notify, "notify", nil, "exec:CMD told of each finding (a suspicious event, one JSON line on its stdin); repeatable")
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON)
	return cmd
}

// parse checks the flags together.
func (o *AuditOptions) parse(since, baseline, timeout string) error {
	switch {
	case o.All && len(o.Keys) > 0:
		return cmdutil.FlagErrorf("pass KEY... or --all, not both")
	case !o.All && len(o.Keys) == 0:
		return cmdutil.FlagErrorf("KEY required: key ids, prefixes or names (or --all for every key)")
	case !o.Rotate && (o.Yes || timeout != ""):
		return cmdutil.FlagErrorf("--yes and --timeout go with --rotate")
	case o.Rotate && !o.Yes && !o.IO.CanPrompt():
		return cmdutil.FlagErrorf("--rotate revokes keys: --yes required when not running interactively")
	}
	for _, d := range []struct {
		name, value string
		to          *time.Duration
	}{{"--since", since, &o.Since}, {"--baseline", baseline, &o.Baseline}, {"--timeout", timeout, &o.Timeout}} {
		if d.value == "" {
			continue
		}
		v, err := config.ParseDuration(d.value)
		if err != nil || v <= 0 {
			return cmdutil.FlagErrorf("invalid %s %q: want a positive duration such as 1h, 24h, 7d or 30d", d.name, d.value)
		}
		*d.to = v
	}
	for _, h := range o.Notify {
		if _, err := notify.ParseHook(h); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
	}
	return nil
}

func auditRun(ctx context.Context, o *AuditOptions) error {
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	allow, err := allowRules(cfg)
	if err != nil {
		return err
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	keys, err := o.auditedKeys(ctx, c)
	if err != nil {
		return err
	}
	now, err := audit.Now(c)
	if err != nil {
		return err
	}
	rep, err := audit.Run(ctx, c, keys, audit.Options{Now: now, Since: o.Since, Baseline: o.Baseline, Allow: allow, ReportQuiet: !o.All})
	if err != nil {
		return err
	}
	if err := o.notifyFindings(cfg, rep, me.User.Email); err != nil {
		return err
	}
	res := AuditResult{Report: rep}
	var rotateErr error
	if o.Output == cmdutil.FormatJSON {
		res.Rotation, rotateErr = o.rotate(ctx, rep, keys, me.Key.ID)
		if err := cmdutil.PrintObject(o.IO.Out, o.Output, res); err != nil {
			return err
		}
	} else {
		if err := printAudit(o.IO, rep); err != nil {
			return err
		}
		_, rotateErr = o.rotate(ctx, rep, keys, me.Key.ID)
	}
	switch {
	case rotateErr != nil:
		return rotateErr
	case rep.Flagged > 0:
		return &cmdutil.ExitError{Code: cmdutil.ExitSuspicious, Err: cmdutil.ErrSilent}
	}
	return nil
}

// allowRules are the profile's audit.allow, checked.
func allowRules(cfg *config.Config) ([]audit.Allow, error) {
	var out []audit.Allow
	for _, r := range cfg.AuditAllow() {
		a, err := audit.NewAllow(r.Match, r.SourceIP, r.UserAgent)
		if err != nil {
			return nil, &config.SettingError{Key: config.KeyAuditAllow, Source: cfg.Source(config.KeyAuditAllow), Err: err}
		}
		out = append(out, a)
	}
	return out, nil
}

// auditedKeys are the keys named, or with --all every key of the
// workspace, revoked ones included: a revoked key presented again is a
// finding. A key named twice is audited once (audit.New).
func (o *AuditOptions) auditedKeys(ctx context.Context, c *client.Client) ([]client.APIKey, error) {
	if o.All {
		return c.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	}
	var out []client.APIKey
	for _, arg := range o.Keys {
		k, err := cmdutil.ResolveKey(ctx, c, arg)
		if err != nil {
			return nil, err
		}
		out = append(out, *k)
	}
	return out, nil
}

// maxEventSources bounds a suspicious event's calls: a hook wants the
// worst, not ten thousand addresses.
const maxEventSources = 20

// notifyFindings tells the hooks of each finding.
func (o *AuditOptions) notifyFindings(cfg *config.Config, rep *audit.Report, actor string) error {
	hooks := append(cfg.Notify(), o.Notify...)
	if rep.Findings == 0 || len(hooks) == 0 {
		return nil
	}
	n, err := notify.New(hooks, notify.Options{Warn: func(s string) { fmt.Fprintln(o.IO.ErrOut, "warning: "+s) }})
	if err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), notify.DefaultTimeout+5*time.Second)
		defer cancel()
		n.Close(ctx)
	}()
	for _, kr := range rep.Keys {
		for _, f := range kr.Findings {
			e := notify.Event{Kind: notify.Suspicious, Step: notify.StepAudit, Time: rep.Until, Actor: notify.Text(actor),
				Key:     notify.Key{ID: notify.Text(kr.Key.ID), Name: notify.Text(kr.Key.Name), Prefix: notify.Text(kr.Key.Prefix)},
				Finding: notify.Text(f.Kind), Reason: notify.Text(f.Why)}
			for i, g := range f.Calls {
				if i == maxEventSources {
					break
				}
				e.Sources = append(e.Sources, notify.Source{SourceIP: notify.Text(g.SourceIP), UserAgent: notify.Text(g.UserAgent),
					Method: notify.Text(g.Method), Path: notify.Text(g.Path), FirstSeen: g.FirstSeen, LastSeen: g.LastSeen, Calls: g.Count})
			}
			n.Notify(e)
		}
	}
	return nil
}

// rotate runs the emergency rotation of the flagged active keys, after
// asking (or with --yes). The management key plana is using is left to a
// person: revoking it first would cut this run off.
func (o *AuditOptions) rotate(ctx context.Context, rep *audit.Report, keys []client.APIKey, mgmtKeyID string) (*fleet.Result, error) {
	if !o.Rotate || rep.Flagged == 0 {
		return nil, nil
	}
	byID := map[string]client.APIKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	var flagged []client.APIKey
	var labels []string
	for _, kr := range rep.Keys {
		k := byID[kr.Key.ID]
		switch {
		case kr.Verdict != audit.Flagged:
		case !k.Active():
			fmt.Fprintf(o.IO.ErrOut, "%s is already revoked: nothing to rotate\n", textsafe.Clean(keyLabel(k)))
		case k.ID == mgmtKeyID:
			fmt.Fprintf(o.IO.ErrOut, "skipping %s: it is the management key plana is using; create another (plana auth login with the new one), then revoke it\n",
				textsafe.Clean(keyLabel(k)))
		default:
			flagged = append(flagged, k)
			labels = append(labels, keyLabel(k))
		}
	}
	if len(flagged) == 0 {
		return nil, nil
	}
	if !o.Yes {
		q := fmt.Sprintf("Rotate %s now, revoking at once (emergency: %s)? Whatever uses them fails until it has the new key",
			textsafe.Clean(strings.Join(labels, ", ")), emergencyReason)
		ok, err := o.IO.Confirm(q, false)
		if err != nil {
			return nil, err
		}
		if !ok {
			fmt.Fprintln(o.IO.ErrOut, "Not rotated. To rotate one later: plana keys rotate KEY --emergency compromise")
			return nil, nil
		}
	}
	return o.RotateFlagged(ctx, flagged, rotation.EmergencyOptions{Reason: emergencyReason, Timeout: o.Timeout, Notify: o.Notify, Output: o.Output})
}

func keyLabel(k client.APIKey) string { return fmt.Sprintf("%s (%s)", k.Name, k.Prefix) }

// printAudit shows the findings, one row each, and the keys with too
// little history to judge, with their busiest caller; then, on stderr,
// what was audited. Everything a caller chose (a name, a user agent, a
// path) is made safe for a terminal.
func printAudit(ios *iostreams.IOStreams, rep *audit.Report) error {
	tty := ios.IsStdoutTTY()
	when := func(t time.Time) string {
		if tty {
			return cmdutil.Ago(rep.Until, t)
		}
		return t.UTC().Format(time.RFC3339)
	}
	t := cmdutil.NewTablePrinter(ios, "Key", "Finding", "Calls", "First seen", "Last seen", "Source IP", "User agent", "Path", "Why")
	row := func(kr audit.KeyReport, kind string, count int, first, last time.Time, calls []audit.CallGroup, why string) {
		g := calls[0]
		ip := g.SourceIP
		addrs := map[string]bool{}
		for _, c := range calls {
			addrs[c.SourceIP] = true
		}
		if len(addrs) > 1 {
			ip += fmt.Sprintf(" (+%d more)", len(addrs)-1)
		}
		ua := g.UserAgent
		if ua == "" {
			ua = "-"
		}
		t.AddRow(textsafe.Clean(fmt.Sprintf("%s (%s)", kr.Key.Name, kr.Key.Prefix)), kind, fmt.Sprint(count), when(first), when(last),
			textsafe.Clean(ip), textsafe.Clean(ua), textsafe.Clean(g.Method+" "+g.Path), textsafe.Clean(why))
	}
	rows := 0
	for _, kr := range rep.Keys {
		for _, f := range kr.Findings {
			row(kr, string(f.Kind), f.Count, f.FirstSeen, f.LastSeen, f.Calls, f.Why)
			rows++
		}
		if kr.Verdict == audit.TooLittleHistory {
			first, last, count := kr.Callers[0].FirstSeen, kr.Callers[0].LastSeen, 0
			for _, g := range kr.Callers {
				first, last, count = minTime(first, g.FirstSeen), maxTime(last, g.LastSeen), count+g.Count
			}
			row(kr, audit.TooLittleHistory, count, first, last, kr.Callers, kr.Note)
			rows++
		}
	}
	if rows > 0 {
		if err := t.Render(); err != nil {
			return err
		}
	}
	cs := ios.ColorScheme()
	verdict := cs.SuccessIcon() + " Nothing flagged"
	if rep.Flagged > 0 {
		verdict = cs.FailureIcon() + fmt.Sprintf(" %d flagged (%s)", rep.Flagged, cmdutil.Plural(rep.Findings, "finding", "findings"))
	}
	fmt.Fprintf(ios.ErrOut, "%s, %d with too little history to judge, %d clean: %s audited, the calls of the last %s against the %s before.\n",
		verdict, rep.TooLittleHistory, rep.Clean, cmdutil.Plural(rep.KeysAudited, "key", "keys"),
		audit.SpanWords(time.Duration(rep.Window)), audit.SpanWords(time.Duration(rep.Baseline)))
	fmt.Fprintf(ios.ErrOut, "Read the execution log once for all of them: %s, %s, up to %s (server time).\n",
		cmdutil.Plural(rep.Log.Pages, "page", "pages"), cmdutil.Plural(rep.Log.Entries, "entry", "entries"), rep.Until.UTC().Format("2006-01-02 15:04:05 UTC"))
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
