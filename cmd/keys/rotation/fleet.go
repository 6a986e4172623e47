package rotation

import (
	"context"
	"fmt"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/fleet"
)

// runKey rotates KEY: to the --to targets, else to those the profile's
// rotation.targets gives its name.
func (o *RotateOptions) runKey(ctx context.Context, eo rotate.Options) error {
	return o.startRun(ctx, eo, func(ctx context.Context, r *rotate.Rotator, eo rotate.Options, cfg *config.Config, rep *progress) error {
		_, k, err := resolveKey(ctx, o.Client, o.Key)
		if err != nil {
			return err
		}
		if job := o.policy(cfg, eo)(*k); len(eo.Targets) == 0 {
			eo.Targets = job.Targets
			if job.QuietPeriod > 0 {
				eo.QuietPeriod = job.QuietPeriod
			}
		}
		step := r.Rotate
		switch {
		case o.Rebuild:
			step = r.Rebuild
		case o.Abort:
			step = r.Abort
		}
		res, err := step(ctx, *k, eo)
		rep.stop()
		if res != nil {
			if perr := printResult(o.IO, o.Output, res); perr != nil {
				return perr
			}
		}
		return mapErr(err)
	})
}

// runDue rotates, or carries on, every key past its cadence that has
// targets; the others are listed and skipped.
func (o *RotateOptions) runDue(ctx context.Context, eo rotate.Options) error {
	return o.startRun(ctx, eo, func(ctx context.Context, r *rotate.Rotator, eo rotate.Options, cfg *config.Config, rep *progress) error {
		due, err := fleet.Overdue(ctx, r, cfg.CadenceFor)
		if err != nil {
			return mapErr(err)
		}
		if len(due) == 0 {
			fmt.Fprintln(o.IO.ErrOut, "No key is due")
			return nil
		}
		res, err := fleet.Rotate(ctx, r, due, o.fleetOptions(cfg, eo))
		rep.stop()
		return o.printBulk(res, err)
	})
}

// runIssuedBy rotates every key a person issued: gated, each to its own
// targets, or revoke-first with --emergency.
func (o *RotateOptions) runIssuedBy(ctx context.Context, eo rotate.Options) error {
	return o.startRun(ctx, eo, func(ctx context.Context, r *rotate.Rotator, eo rotate.Options, cfg *config.Config, rep *progress) error {
		keys, err := fleet.IssuedBy(ctx, r, o.IssuedBy)
		if err != nil {
			return mapErr(err)
		}
		if err := fleet.CheckSharedTargets(o.Targets, len(keys)); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
		fo := o.fleetOptions(cfg, eo)
		if o.Emergency == "" {
			var none []string
			for _, k := range keys {
				if len(fo.Policy(k).Targets) == 0 {
					none = append(none, fmt.Sprintf("%s (%s)", k.Name, k.Prefix))
				}
			}
			if len(none) > 0 {
				return cmdutil.FlagErrorf("%d of the %d keys issued by %s have no deploy target: %s.\nGive each one in the profile's rotation.targets (match: GLOB, to: [TARGET, ...]) for the gated procedure, or revoke them first with --emergency departed",
					len(none), len(keys), o.IssuedBy, strings.Join(none, ", "))
			}
		}
		res, err := fleet.RotateIssuedBy(ctx, r, o.IssuedBy, fo)
		rep.stop()
		return o.printBulk(res, err)
	})
}

// fleetOptions are a fleet run's options: each key's from policy.
func (o *RotateOptions) fleetOptions(cfg *config.Config, eo rotate.Options) fleet.Options {
	return fleet.Options{Options: eo, Parallel: o.Parallel, Policy: o.policy(cfg, eo)}
}

// policy gives a key its targets (--to, else its rotation.targets entry)
// and its quiet period (--quiet-period, else its entry's); a key with no
// target is skipped.
func (o *RotateOptions) policy(cfg *config.Config, eo rotate.Options) func(client.APIKey) fleet.Job {
	return func(k client.APIKey) fleet.Job {
		job := fleet.Job{Key: k, Targets: o.Targets}
		rule, ok := cfg.TargetRuleFor(k.Name)
		if len(job.Targets) == 0 && ok {
			job.Targets = rule.To
		}
		if o.QuietPeriod == 0 && ok {
			job.QuietPeriod = rule.QuietPeriod
		}
		if len(job.Targets) == 0 && o.Emergency == "" {
			job.Skip = "no target in rotation.targets"
		}
		return job
	}
}

// startRun is the start every rotate run shares: the Rotator with its
// hooks, the config, and the hooks drained at the end.
func (o *RotateOptions) startRun(ctx context.Context, eo rotate.Options, run func(context.Context, *rotate.Rotator, rotate.Options, *config.Config, *progress) error) error {
	r, eo, rep, err := o.startWith(ctx, eo, o.Notify)
	defer rep.stop()
	if err != nil {
		return err
	}
	defer closeNotify(r)
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	return run(ctx, r, eo, cfg, rep)
}

func (o *RotateOptions) printBulk(res *fleet.Result, err error) error {
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
