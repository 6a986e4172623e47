package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate/fleet"
	"github.com/plana-cli/plana/rotate/ref"
)

// storedOn is the emergency for a lost or stolen machine.
func (c *rotateContext) storedOn(ctx context.Context) error {
	return c.incident(ctx, func(ctx context.Context) (*fleet.Plan, error) {
		return fleet.StoredOn(ctx, c.r, c.opts.StoredOn, c.eo)
	})
}

// departed is --issued-by's emergency: a person who left.
func (c *rotateContext) departed(ctx context.Context) error {
	return c.incident(ctx, func(ctx context.Context) (*fleet.Plan, error) {
		return fleet.Departed(ctx, c.r, c.opts.IssuedBy, c.eo)
	})
}

func (o *RotateOptions) validateStoredOn() error {
	if o.StoredOn == "" {
		return nil
	}
	host, err := config.ParseMachineName(o.StoredOn)
	if err != nil {
		return cmdutil.FlagErrorf("--stored-on: %v", err)
	}
	o.StoredOn = host
	if o.Emergency == "" {
		return cmdutil.FlagErrorf("--stored-on revokes each old key at once: add --emergency lost-device (with --dry-run first to see the plan)")
	}
	return nil
}

// incident shows the incident's plan before anything changes, has the
// management keys' revoke confirmed, and carries the plan out.
func (c *rotateContext) incident(ctx context.Context, plan func(context.Context) (*fleet.Plan, error)) error {
	o := c.opts
	p, err := plan(ctx)
	if err != nil {
		return mapErr(err)
	}
	if err := fleet.CheckSharedTargets(o.Settings.Targets, len(p.Rotate)); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	p.Reason = o.Emergency
	c.rep.stop()
	printPlan(o.IO, p, func(k client.APIKey) []string {
		set, _ := c.r.Settings(k, c.eo)
		return set.Targets
	})
	revokeLast, err := o.confirmRevokeLast(p)
	if err != nil {
		return err
	}
	res, err := fleet.RunIncident(ctx, c.r, p, c.fleetOptions(), revokeLast)
	c.rep.stop()
	if res != nil {
		if perr := o.printIncident(res); perr != nil {
			return perr
		}
	}
	return mapErr(err)
}

// confirmRevokeLast asks, on a terminal, before the management keys are
// revoked; a script says --yes. It asks before the run, so that nobody
// waits at the prompt while the rotations go on.
func (o *RotateOptions) confirmRevokeLast(p *fleet.Plan) (bool, error) {
	n := len(p.RevokeLast)
	switch {
	case n == 0 || o.DryRun:
		return false, nil
	case o.Yes:
		return true, nil
	case !o.IO.CanPrompt():
		return false, cmdutil.FlagErrorf("the plan revokes %s last: --yes required when not running interactively; nothing was done", cmdutil.Plural(n, "management key", "management keys"))
	}
	ok, err := o.IO.Confirm(fmt.Sprintf("Revoke the %s above last, once the rotations have revoked their old keys?", cmdutil.Plural(n, "management key", "management keys")), false)
	if err != nil {
		return false, err
	}
	if !ok {
		fmt.Fprintln(o.IO.ErrOut, "The management keys stay active; revoke each later with plana keys revoke ID --force --yes.")
	}
	return ok, nil
}

// printPlan shows the whole plan on stderr, before anything is done.
func printPlan(ios *iostreams.IOStreams, p *fleet.Plan, targets func(client.APIKey) []string) {
	w := ios.ErrOut
	line := func(s string) { fmt.Fprintln(w, textsafe.Clean(s)) }
	fmt.Fprintln(w, ios.ColorScheme().Bold(textsafe.Clean(fmt.Sprintf("Emergency (%s): the keys %s", p.Reason, p.About))))
	section := func(title string, list []fleet.PlanKey, tail func(fleet.PlanKey) string) {
		if len(list) == 0 {
			return
		}
		line(fmt.Sprintf("%s (%d):", title, len(list)))
		for _, x := range list {
			s := fmt.Sprintf("  %s: %s", keyLabel(ref.Of(x.Key)), x.Why)
			if tail != nil {
				s += "; " + tail(x)
			}
			line(s)
		}
	}
	section("Rotate now, each old key revoked at once, then its new key deployed", p.Rotate, func(x fleet.PlanKey) string {
		if ts := targets(x.Key); len(ts) > 0 {
			return "to " + strings.Join(ts, ", ")
		}
		return "no target: the new key stays in this machine's keyring for a deploy by hand (plana keys secret NEW_KEY | …, the run names it), and what uses the old key fails until then"
	})
	section("Revoke once the rotations have revoked their old keys", p.RevokeAfter, nil)
	section("Revoke last: management keys, once confirmed (--yes)", p.RevokeLast, nil)
	if x := p.InUse; x != nil {
		line(fmt.Sprintf("Skip: %s: %s; %s", keyLabel(ref.Of(x.Key)), x.Why, x.Next))
	}
	section("Cannot place: a person decides", p.Unplaced, nil)
	if p.Elsewhere > 0 {
		line(fmt.Sprintf("%s stored on other machines, as their lineage says: not touched.", cmdutil.Plural(p.Elsewhere, "other active key is", "other active keys are")))
	}
	if p.Window != nil {
		line(fmt.Sprintf("Management keys used by plana: the execution log from %s to %s (the last %d days, server time).",
			p.Window.Since.Format(time.DateOnly), p.Window.Until.Format(time.DateOnly), int(fleet.ManagementWindow.Hours()/24)))
	}
	if len(p.Rotate)+len(p.RevokeAfter)+len(p.RevokeLast) == 0 {
		line("Nothing to rotate or revoke.")
	}
}

// printIncident shows how the run went: the rotations' table, then each
// revoke.
func (o *RotateOptions) printIncident(res *fleet.IncidentResult) error {
	if o.Output == cmdutil.FormatJSON {
		return cmdutil.PrintObject(o.IO.Out, o.Output, res)
	}
	if len(res.Items) > 0 {
		if err := printBulkSummary(o.IO, res.Result); err != nil {
			return err
		}
	}
	if len(res.Revocations) == 0 {
		return nil
	}
	t := cmdutil.NewTablePrinter(o.IO, "REVOKE", "KIND", "STATE", "DETAIL")
	count := map[fleet.State]int{}
	for _, rv := range res.Revocations {
		kind := "no rotation keeps it"
		if rv.Management {
			kind = "management key"
		}
		state := map[fleet.State]string{fleet.Done: "revoked", fleet.Skipped: "left", fleet.Failed: "failed", fleet.Planned: "planned"}[rv.State]
		count[rv.State]++
		t.AddRow(keyLabel(rv.Key), kind, state, textsafe.Clean(firstLine(rv.Error)))
	}
	if err := t.Render(); err != nil {
		return err
	}
	if count[fleet.Planned] > 0 {
		fmt.Fprintf(o.IO.ErrOut, "dry run: %s would be revoked, nothing changed\n", cmdutil.Plural(count[fleet.Planned], "key", "keys"))
		return nil
	}
	fmt.Fprintf(o.IO.ErrOut, "%d revoked, %d left to a person, %d failed\n", count[fleet.Done], count[fleet.Skipped], count[fleet.Failed])
	return nil
}
