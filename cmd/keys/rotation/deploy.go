package rotation

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/target"
)

// DeployOptions of `plana keys deploy`.
type DeployOptions struct {
	StepDeps

	Key         string
	Targets     []string
	Finalize    bool
	DryRun      bool
	ForceTTY    bool
	ExecTimeout time.Duration
	Output      string
}

// NewCmdDeploy builds `plana keys deploy KEY --to TARGET...`.
func NewCmdDeploy(f *cmdutil.Factory, runF func(context.Context, *DeployOptions) error) *cobra.Command {
	o := &DeployOptions{StepDeps: stepDeps(f)}
	cmd := newStepCmd(&cobra.Command{
		Use:   "deploy KEY --to TARGET...",
		Short: "Step 2: hand the new key to the automation (step 4 with --finalize)",
		Long: `Deploy the new key of KEY's rotation (KEY may name the old or the new key):

  env-file:PATH  adds PLANA_KEY_NEW=… next to PLANA_KEY; every other line is kept
                 byte for byte; atomic write keeping the file's owner, group, mode
  exec:CMD       runs CMD with sh -c, the key on its stdin (never in argv or env)
  exec-ab:CMD    the same for a store plana cannot read (GitHub Actions secrets)
                 kept as two slots: only deploy gets the key, so any machine
                 can finish the rotation (docs/targets.md)
  stdout         prints the key once
  k8s:[CONTEXT@]NAMESPACE/NAME[?rollout=KIND/NAME], aws-sm:SECRET_ID,
  aws-ssm:PATH, sops:PATH, pass:PATH
                 a secret store's PLANA_KEY_NEW next to its PLANA_KEY, read back
                 after every write; another machine reads the new key back from
                 it to carry the rotation on

--to may be given several times (regions, instances), as with plana keys
rotate: the new key is deployed to each; a target that fails leaves the others
deployed, and the same command run again deploys only to what is left.

Deploying the same key again changes nothing. --finalize (step 4) leaves only the
new key, under PLANA_KEY, at each target (--to's, else the rotation's).`,
		Example: `  $ plana keys deploy pa_live_AB7K2XYZ --to env-file:/etc/stock-sync.env
  $ plana keys deploy pa_live_AB7K2XYZ \
      --to env-file:/srv/eu.env --to env-file:/srv/us.env
  $ plana keys deploy pa_live_AB7K2XYZ --finalize`,
		Args: cmdutil.ExactArgs(1, "KEY"),
	}, o, &o.Key, &o.Output, o.validate, runF, deployRun)
	cmd.Flags().StringArrayVar(&o.Targets, "to", nil, "deploy target: env-file:PATH, exec:CMD (key on stdin), exec-ab:CMD, stdout, or a secret store: k8s:[CONTEXT@]NAMESPACE/NAME[?rollout=KIND/NAME], aws-sm:SECRET_ID, aws-ssm:PATH, sops:PATH, pass:PATH (docs/targets.md); repeat for several")
	cmd.Flags().BoolVar(&o.Finalize, "finalize", false, "step 4: leave only the new key")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would be deployed, change nothing")
	addExecTimeoutFlag(cmd, &o.ExecTimeout)
	cmd.Flags().BoolVar(&o.ForceTTY, "force-tty", false, "with --to stdout: print the new key even when stdout is a terminal")
	return cmd
}

func (o *DeployOptions) validate() error {
	if err := checkTargets(o.Targets); err != nil {
		return err
	}
	if len(o.Targets) == 0 && !o.Finalize {
		return cmdutil.FlagErrorf("--to TARGET required: %s", target.Forms)
	}
	for _, t := range o.Targets {
		if err := checkStdoutTarget(o.IO, t, o.ForceTTY); err != nil {
			return err
		}
	}
	return nil
}

func deployRun(ctx context.Context, o *DeployOptions) error {
	eo := rotate.Options{Targets: o.Targets, Finalize: o.Finalize, DryRun: o.DryRun, ExecTimeout: o.ExecTimeout}
	return o.runStep(ctx, o.Key, o.Output, eo, func(r *rotate.Rotator) stepFunc { return r.Deploy })
}
