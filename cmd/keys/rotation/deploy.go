package rotation

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate"
)

// DeployOptions of `plana keys deploy`.
type DeployOptions struct {
	StepDeps

	Key      string
	Target   string
	Finalize bool
	DryRun   bool
	Output   string
}

// NewCmdDeploy builds `plana keys deploy KEY --to TARGET`.
func NewCmdDeploy(f *cmdutil.Factory, runF func(context.Context, *DeployOptions) error) *cobra.Command {
	o := &DeployOptions{StepDeps: stepDeps(f)}
	cmd := newStepCmd(&cobra.Command{
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
	}, o, &o.Key, &o.Output, o.validate, runF, deployRun)
	cmd.Flags().StringVar(&o.Target, "to", "", "env-file:PATH, exec:CMD or stdout")
	cmd.Flags().BoolVar(&o.Finalize, "finalize", false, "step 4: leave only the new key")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would be deployed, change nothing")
	return cmd
}

func (o *DeployOptions) validate() error {
	if err := checkTarget(o.Target); err != nil {
		return err
	}
	if o.Target == "" && !o.Finalize {
		return cmdutil.FlagErrorf("--to TARGET required: env-file:PATH, exec:CMD or stdout")
	}
	return nil
}

func deployRun(ctx context.Context, o *DeployOptions) error {
	eo := rotate.Options{Target: o.Target, Finalize: o.Finalize, DryRun: o.DryRun}
	return o.runStep(ctx, o.Key, o.Output, eo, func(r *rotate.Rotator) stepFunc { return r.Deploy })
}
