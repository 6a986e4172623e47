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
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
)

const sparkHours = 48

// maxUsageEntries bounds how much of the execution log `keys show` reads: a
// key called every second would otherwise page through 600k entries a week.
const maxUsageEntries = 50000

// ShowOptions of `plana keys show`.
type ShowOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Client func() (*client.Client, error)
	Now    func() time.Time
	// StateDir holds the journals of rotations under way.
	StateDir func() (string, error)

	Key    string
	Since  time.Duration
	Output string
}

// Usage is how a key has been used recently.
type Usage struct {
	Since        time.Time     `json:"since" yaml:"since"`
	Until        time.Time     `json:"until" yaml:"until"`
	Calls        int           `json:"calls" yaml:"calls"`
	Truncated    bool          `json:"truncated" yaml:"truncated"`
	Sources      []gate.Source `json:"sources" yaml:"sources"`
	CallsPerHour []int         `json:"calls_per_hour_48h" yaml:"calls_per_hour_48h"`
}

// ShowResult is `plana keys show -o json`.
type ShowResult struct {
	Key      KeyRecord      `json:"key" yaml:"key"`
	Usage    Usage          `json:"usage" yaml:"usage"`
	Rotation *RotationUsage `json:"rotation,omitempty" yaml:"rotation,omitempty"`
	Lineage  *Lineage       `json:"lineage,omitempty" yaml:"lineage,omitempty"`
	// RefusedSinceRevoke: for a revoked key, the calls still presenting it.
	RefusedSinceRevoke []gate.Source `json:"refused_since_revoke,omitempty" yaml:"refused_since_revoke,omitempty"`
}

// RotationUsage is, for a key in an unfinished rotation, both keys' calls
// per hour on one scale, so the traffic is seen moving to the new key.
type RotationUsage struct {
	Old             ref.Key      `json:"old" yaml:"old"`
	New             ref.Key      `json:"new" yaml:"new"`
	Step            rotate.State `json:"step" yaml:"step"`
	OldCallsPerHour []int        `json:"old_calls_per_hour_48h" yaml:"old_calls_per_hour_48h"`
	NewCallsPerHour []int        `json:"new_calls_per_hour_48h" yaml:"new_calls_per_hour_48h"`
	// Migration is each source of the old key, and whether it has reached
	// the new one yet.
	Migration []gate.Migration `json:"migration" yaml:"migration"`
}

// NewCmdShow builds `plana keys show`.
func NewCmdShow(f *cmdutil.Factory, runF func(context.Context, *ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IOStreams, Config: f.Config, Client: f.Client, Now: f.Now, StateDir: f.StateDir}
	var since string
	cmd := &cobra.Command{
		Use:   "show KEY",
		Short: "Show one key and where it is used from",
		Long: `Show one key in full, with where it has been called from recently: the execution log
grouped by source IP, user agent and path, and a sparkline of calls per hour over the
last 48 hours. For the old or the new key of an unfinished rotation it draws both keys'
lines on one scale, so you see the traffic move from one to the other.`,
		Example: `  $ plana keys show "Nightly stock sync (2025)"
  $ plana keys show pa_live_AB7K2XYZ --since 30d -o json`,
		Args: cmdutil.ExactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key = args[0]
			d, err := config.ParseDuration(since)
			if err != nil || d <= 0 {
				return cmdutil.FlagErrorf("invalid --since %q: want a positive duration such as 48h, 7d or 30d", since)
			}
			opts.Since = d
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return showRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&since, "since", "7d", "how far back to read the execution log for usage sources")
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

func showRun(ctx context.Context, opts *ShowOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	c, err := opts.Client()
	if err != nil {
		return err
	}
	k, err := cmdutil.ResolveKey(ctx, c, opts.Key)
	if err != nil {
		return err
	}
	now := serverNow(c, opts.Now)
	window := max(opts.Since, sparkHours*time.Hour)
	u := Usage{Since: now.Add(-opts.Since), Until: now}
	tally := gate.NewTally()
	var recent []time.Time
	read := 0
	err = c.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: k.ID, Since: now.Add(-window), PageSize: 1000, Limit: maxUsageEntries},
		func(page []client.ExecutionLogEntry) error {
			var inSince []client.ExecutionLogEntry
			for _, e := range page {
				if now.Sub(e.At) < sparkHours*time.Hour {
					recent = append(recent, e.At)
				}
				if !e.At.Before(u.Since) {
					inSince = append(inSince, e)
				}
			}
			tally.Add(inSince...)
			read += len(page)
			return nil
		})
	if err != nil {
		return fmt.Errorf("reading the execution log: %w", err)
	}
	u.Calls = tally.Total
	u.Truncated = read >= maxUsageEntries
	u.Sources = tally.Sources()
	u.CallsPerHour = cmdutil.HourlyCounts(now, sparkHours, recent)
	res := ShowResult{Key: newKeyRecord(*k, rotation.PolicyOf(cfg), now), Usage: u}
	if res.Rotation, err = rotationUsage(ctx, c, opts.StateDir, *k, now, u.CallsPerHour); err != nil {
		return err
	}
	if res.Lineage, res.RefusedSinceRevoke, err = teamView(ctx, c, *k); err != nil {
		return err
	}
	if opts.Output != cmdutil.FormatTable {
		return cmdutil.PrintObject(opts.IO.Out, opts.Output, res)
	}
	return printShow(opts.IO, res.clean(), now, opts.Since)
}

// clean is res with what others chose made safe for a terminal: a request
// path or user agent is whatever a caller sent, a key's name and its
// issuer's email whatever a member typed.
func (res ShowResult) clean() ShowResult {
	res.Key = res.Key.clean()
	res.Usage.Sources = cleanSources(res.Usage.Sources)
	res.RefusedSinceRevoke = cleanSources(res.RefusedSinceRevoke)
	if ru := res.Rotation; ru != nil {
		c := *ru
		c.Old.Name, c.New.Name = textsafe.Clean(c.Old.Name), textsafe.Clean(c.New.Name)
		c.Old.Prefix, c.New.Prefix = textsafe.Clean(c.Old.Prefix), textsafe.Clean(c.New.Prefix)
		c.Migration = make([]gate.Migration, len(ru.Migration))
		for i, m := range ru.Migration {
			m.SourceIP, m.UserAgent = textsafe.Clean(m.SourceIP), textsafe.Clean(m.UserAgent)
			c.Migration[i] = m
		}
		res.Rotation = &c
	}
	if l := res.Lineage; l != nil {
		res.Lineage = &Lineage{Predecessors: cleanLineage(l.Predecessors), Successors: cleanLineage(l.Successors)}
		for _, c := range l.Claimants {
			res.Lineage.Claimants = append(res.Lineage.Claimants, cleanClaimant(c))
		}
		if l.Claim != nil {
			c := cleanClaimant(*l.Claim)
			res.Lineage.Claim = &c
		}
	}
	return res
}

func cleanSources(ss []gate.Source) []gate.Source {
	out := make([]gate.Source, len(ss))
	for i, s := range ss {
		s.SourceIP, s.UserAgent, s.Path = textsafe.Clean(s.SourceIP), textsafe.Clean(s.UserAgent), textsafe.Clean(s.Path)
		out[i] = s
	}
	return out
}

// cleanClaimant is c made safe for a terminal: every word of a claim is
// whoever made it, the reasons quote the claim's words.
func cleanClaimant(c lineage.Claimant) lineage.Claimant {
	k := &c.Key
	k.Name, k.Prefix, k.Status, k.CreatedBy.Email, k.CreatedBy.Role = textsafe.Clean(k.Name), textsafe.Clean(k.Prefix), textsafe.Clean(k.Status), textsafe.Clean(k.CreatedBy.Email), textsafe.Clean(k.CreatedBy.Role)
	c.Old.Name, c.Old.Prefix = textsafe.Clean(c.Old.Name), textsafe.Clean(c.Old.Prefix)
	c.Doubts = cleanAll(c.Doubts)
	return c
}

func cleanLineage(ks []LineageKey) []LineageKey {
	out := make([]LineageKey, len(ks))
	for i, k := range ks {
		k.Name, k.Prefix, k.Status, k.CreatedBy = textsafe.Clean(k.Name), textsafe.Clean(k.Prefix), textsafe.Clean(k.Status), textsafe.Clean(k.CreatedBy)
		out[i] = k
	}
	return out
}

// rotationUsage finds the unfinished rotation k is the old or the new key
// of, and reads the other key's calls per hour; nil when there is none.
func rotationUsage(ctx context.Context, c *client.Client, stateDir func() (string, error), k client.APIKey, now time.Time, own []int) (*RotationUsage, error) {
	dir, err := stateDir()
	if err != nil {
		return nil, nil
	}
	// A damaged journal is for keys status and doctor to report, not show.
	items, _ := rotate.Status(dir)
	for _, it := range items {
		if it.New == nil || (it.Old.ID != k.ID && it.New.ID != k.ID) {
			continue
		}
		ru := &RotationUsage{Old: it.Old, New: *it.New, Step: it.State}
		other := it.New.ID
		if it.New.ID == k.ID {
			other = it.Old.ID
		}
		calls, err := cmdutil.KeyCallsPerHour(ctx, c, other, now, sparkHours)
		if err != nil {
			return nil, fmt.Errorf("reading the execution log of %s: %w", other, err)
		}
		ru.OldCallsPerHour, ru.NewCallsPerHour = own, calls
		if it.New.ID == k.ID {
			ru.OldCallsPerHour, ru.NewCallsPerHour = calls, own
		}
		if ru.Migration, err = gate.ReadMigration(ctx, c, it.Old.ID, it.New.ID, it.NewCreatedAt, time.Duration(it.QuietPeriod), now); err != nil {
			return nil, err
		}
		return ru, nil
	}
	return nil, nil
}

func printShow(ios *iostreams.IOStreams, res ShowResult, now time.Time, since time.Duration) error {
	cs := ios.ColorScheme()
	w := ios.Out
	r := res.Key
	when := func(t time.Time) string {
		return cmdutil.Stamp(now, t)
	}
	fmt.Fprintln(w, cs.Bold(r.Name))
	fmt.Fprintf(w, "  ID:         %s\n", r.ID)
	fmt.Fprintf(w, "  Prefix:     %s\n", r.Prefix)
	status := cs.Green(r.Status)
	if r.Status != client.StatusActive {
		status = cs.Gray(r.Status)
	}
	fmt.Fprintf(w, "  Status:     %s\n", status)
	fmt.Fprintf(w, "  Scopes:     %s\n", strings.Join(r.Scopes, ", "))
	if r.Description != "" {
		fmt.Fprintf(w, "  About:      %s\n", r.Description)
	}
	fmt.Fprintf(w, "  Created:    %s by %s\n", when(r.CreatedAt), r.CreatedBy.Email)
	if r.LastUsedAt != nil {
		fmt.Fprintf(w, "  Last used:  %s\n", when(*r.LastUsedAt))
	} else {
		fmt.Fprintf(w, "  Last used:  never\n")
	}
	if r.RevokedAt != nil {
		by := ""
		if r.RevokedBy != nil {
			by = " by " + r.RevokedBy.Email
		}
		fmt.Fprintf(w, "  Revoked:    %s%s\n", when(*r.RevokedAt), by)
	}
	if r.RotationDueAt != nil {
		due := fmt.Sprintf("%s (%s, cadence %s)", r.RotationDueAt.UTC().Format(time.DateOnly), cmdutil.FuzzyAgo(now, *r.RotationDueAt), r.RotationCadence)
		if r.RotationDue {
			due = cs.Red(fmt.Sprintf("%s (overdue %s, cadence %s)", r.RotationDueAt.UTC().Format(time.DateOnly),
				cmdutil.FuzzyDuration(now.Sub(*r.RotationDueAt)), r.RotationCadence))
		}
		fmt.Fprintf(w, "  Rotate by:  %s\n", due)
	}
	if err := printTeamView(ios, res, now); err != nil {
		return err
	}

	total48 := 0
	for _, n := range res.Usage.CallsPerHour {
		total48 += n
	}
	if ru := res.Rotation; ru != nil {
		fmt.Fprintf(w, "\nRotating %s (%s) to %s (%s), at step %s; calls per hour, last 48 h (oldest to now):\n%s",
			ru.Old.Name, ru.Old.Prefix, ru.New.Name, ru.New.Prefix, ru.Step, cmdutil.RotationChart(
				cmdutil.KeyTraffic{Label: "old", Prefix: ru.Old.Prefix, CallsPerHour: ru.OldCallsPerHour},
				cmdutil.KeyTraffic{Label: "new", Prefix: ru.New.Prefix, CallsPerHour: ru.NewCallsPerHour}))
		if err := printMigration(ios, ru.Migration, now); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "\nCalls per hour, last 48 h (oldest to now), %d in all:\n  %s\n", total48, cmdutil.Sparkline(res.Usage.CallsPerHour))
	}

	fmt.Fprintf(w, "\nUsed from, last %s:\n", config.FormatDuration(since))
	if res.Usage.Truncated {
		fmt.Fprintf(w, "  (only the newest %d calls were read; use a shorter --since for a full count)\n", maxUsageEntries)
	}
	if len(res.Usage.Sources) == 0 {
		fmt.Fprintln(w, "  no calls")
		return nil
	}
	t := cmdutil.NewTablePrinter(ios, "Source IP", "User agent", "Path", "Calls", "Last seen")
	for _, s := range res.Usage.Sources {
		last := cmdutil.Ago(now, s.LastSeen)
		if !ios.IsStdoutTTY() {
			last = s.LastSeen.UTC().Format(time.RFC3339)
		}
		t.AddRow(s.SourceIP, s.UserAgent, s.Path, fmt.Sprint(s.Calls), last)
	}
	return t.Render()
}

// printMigration shows, source by source, the move from the old key to the
// new: a source not on the new key yet holds the gate until its own quiet
// time (twice its cadence, at least the quiet period) has passed.
func printMigration(ios *iostreams.IOStreams, ms []gate.Migration, now time.Time) error {
	fmt.Fprintf(ios.Out, "\nMigration, source by source (the old key's calls over the last %s):\n", config.FormatDuration(gate.Lookback))
	if len(ms) == 0 {
		fmt.Fprintln(ios.Out, "  the old key has no calls to follow")
		return nil
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		if ios.IsStdoutTTY() {
			return cmdutil.Ago(now, t)
		}
		return t.UTC().Format(time.RFC3339)
	}
	t := cmdutil.NewTablePrinter(ios, "Source IP", "User agent", "Last on old", "First on new", "Cadence", "State")
	for _, m := range ms {
		cadence := "-"
		if m.Cadence > 0 {
			cadence = config.FormatDuration(time.Duration(m.Cadence))
		}
		state := "moved"
		switch {
		case m.Holding:
			state = "holds the gate until " + m.HoldUntil.UTC().Format(time.RFC3339)
		case !m.Moved:
			state = "quiet " + config.FormatDuration(time.Duration(m.QuietTime)) + ", not moved"
		}
		t.AddRow(m.SourceIP, m.UserAgent, at(m.OldLast), at(m.NewFirst), cadence, state)
	}
	return t.Render()
}
