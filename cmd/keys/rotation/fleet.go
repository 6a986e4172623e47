package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/rotate"
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
		me, err := r.API.Me(ctx)
		if err != nil {
			return mapErr(err)
		}
		keys, err := r.API.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusActive, PageSize: 1000})
		if err != nil {
			return mapErr(err)
		}
		now, ok := r.API.ServerNow()
		if !ok {
			return fmt.Errorf("the server sent no Date header: plana will not judge what is due by the local clock")
		}
		overrides := map[string]time.Duration{}
		for _, k := range keys {
			overrides[k.ID] = cfg.CadenceFor(k.Name)
		}
		var due []client.APIKey
		for _, it := range rotate.Due(keys, now, rotate.DueOptions{Cadence: cfg.Cadence(), Overrides: overrides}) {
			switch {
			case !it.Overdue:
			case it.Key.ID == me.Key.ID:
				r.Reporter.Warn(fmt.Sprintf("skipping %s (%s): it is the management key plana is using; rotate it by hand", it.Key.Name, it.Key.Prefix))
			default:
				due = append(due, it.Key)
			}
		}
		if len(due) == 0 {
			fmt.Fprintln(o.IO.ErrOut, "No key is due")
			return nil
		}
		eo.Policy = o.policy(cfg, eo)
		res, err := r.RotateFleet(ctx, due, eo)
		rep.stop()
		return o.printBulk(res, err)
	})
}

// runIssuedBy rotates every key a person issued: gated, each to its own
// targets, or revoke-first with --emergency.
func (o *RotateOptions) runIssuedBy(ctx context.Context, eo rotate.Options) error {
	return o.startRun(ctx, eo, func(ctx context.Context, r *rotate.Rotator, eo rotate.Options, cfg *config.Config, rep *progress) error {
		keys, err := r.IssuedBy(ctx, o.IssuedBy)
		if err != nil {
			return mapErr(err)
		}
		if err := rotate.CheckSharedTargets(o.Targets, len(keys)); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
		policy := o.policy(cfg, eo)
		if o.Emergency == "" {
			var none []string
			for _, k := range keys {
				if len(policy(k).Targets) == 0 {
					none = append(none, fmt.Sprintf("%s (%s)", k.Name, k.Prefix))
				}
			}
			if len(none) > 0 {
				return cmdutil.FlagErrorf("%d of the %d keys issued by %s have no deploy target: %s.\nGive each one in the profile's rotation.targets (match: GLOB, to: [TARGET, ...]) for the gated procedure, or revoke them first with --emergency departed",
					len(none), len(keys), o.IssuedBy, strings.Join(none, ", "))
			}
		}
		eo.Policy = policy
		res, err := r.RotateIssuedBy(ctx, o.IssuedBy, eo)
		rep.stop()
		return o.printBulk(res, err)
	})
}

// policy gives a key its targets (--to, else its rotation.targets entry)
// and its quiet period (--quiet-period, else its entry's); a key with no
// target is skipped.
func (o *RotateOptions) policy(cfg *config.Config, eo rotate.Options) func(client.APIKey) rotate.FleetJob {
	return func(k client.APIKey) rotate.FleetJob {
		job := rotate.FleetJob{Key: k, Targets: o.Targets}
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

func (o *RotateOptions) printBulk(res *rotate.BulkResult, err error) error {
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
