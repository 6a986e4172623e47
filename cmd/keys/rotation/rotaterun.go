package rotation

import (
	"context"
	"fmt"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/fleet"
)

// rotateContext is one run of keys rotate, resolved once before any mode
// runs: the Rotator with its reporter and hooks, and the options every
// rotation of the run starts from, the flags with the profile's policy
// under them (each rotation settles its own settings from those: see
// rotate.Policy.Resolve). The modes only read it.
type rotateContext struct {
	opts *RotateOptions
	r    *rotate.Rotator
	eo   rotate.Options
	rep  *progress
}

// newRotateContext resolves o once. The caller closes it.
func newRotateContext(ctx context.Context, o *RotateOptions) (*rotateContext, error) {
	eo := rotate.Options{Targets: o.Settings.Targets, QuietPeriod: o.Settings.QuietPeriod, PollInterval: o.Settings.PollInterval,
		ExecTimeout: o.Settings.ExecTimeout, Timeout: o.Timeout, NoWait: o.NoWait, Yes: o.Yes, DryRun: o.DryRun, Force: o.Force,
		PrintSecret: o.PrintSecret, Emergency: o.Emergency, Reason: o.Reason, WatchAfterRevoke: o.watchAfterRevoke(), ResetSettings: o.ResetSettings}
	if o.Abort && eo.Reason == "" {
		eo.Reason = "called off"
	}
	r, eo, rep, err := o.start(ctx, eo, o.Notify)
	c := &rotateContext{opts: o, r: r, eo: eo, rep: rep}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// close stops the progress line and lets the hooks finish.
func (c *rotateContext) close() {
	c.rep.stop()
	closeNotify(c.r)
}

func rotateRun(ctx context.Context, o *RotateOptions) error {
	c, err := newRotateContext(ctx, o)
	if err != nil {
		return err
	}
	defer c.close()
	switch o.mode() {
	case modeDue:
		return c.due(ctx)
	case modeIssuedBy:
		return c.issuedBy(ctx)
	case modeDeparted:
		return c.departed(ctx)
	case modeStoredOn:
		return c.storedOn(ctx)
	}
	return c.key(ctx)
}

// key rotates KEY, calls its rotation off (--abort) or rebuilds its
// journal (--rebuild).
func (c *rotateContext) key(ctx context.Context) error {
	_, k, err := resolveKey(ctx, c.opts.Client, c.opts.Key)
	if err != nil {
		return err
	}
	step := c.r.Rotate
	switch c.opts.mode() {
	case modeAbort:
		step = c.r.Abort
	case modeRebuild:
		step = c.r.Rebuild
	}
	res, err := step(ctx, *k, c.eo)
	c.rep.stop()
	if res != nil {
		if perr := printResult(c.opts.IO, c.opts.Output, res); perr != nil {
			return perr
		}
	}
	return mapErr(err)
}

// due rotates, or carries on, every key past its cadence that has targets;
// the others are listed and skipped.
func (c *rotateContext) due(ctx context.Context) error {
	res, err := fleet.RotateDue(ctx, c.r, c.fleetOptions())
	c.rep.stop()
	if err == nil && len(res.Items) == 0 {
		fmt.Fprintln(c.opts.IO.ErrOut, "No key is due")
		return nil
	}
	return c.printBulk(res, err)
}

// issuedBy rotates every key a person issued through the gated procedure,
// each to its own targets (--emergency: departed).
func (c *rotateContext) issuedBy(ctx context.Context) error {
	res, err := fleet.RotateIssuedBy(ctx, c.r, c.opts.IssuedBy, c.fleetOptions())
	c.rep.stop()
	return c.printBulk(res, err)
}

func (c *rotateContext) fleetOptions() fleet.Options {
	return fleet.Options{Options: c.eo, Parallel: c.opts.Parallel}
}

// printBulk prints a fleet's result, if any, and maps its error.
func (c *rotateContext) printBulk(res *fleet.Result, err error) error {
	if res != nil {
		if c.opts.Output == cmdutil.FormatJSON {
			if perr := cmdutil.PrintObject(c.opts.IO.Out, c.opts.Output, res); perr != nil {
				return perr
			}
		} else if perr := printBulkSummary(c.opts.IO, res); perr != nil {
			return perr
		}
	}
	return mapErr(err)
}
