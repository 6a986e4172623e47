package rotation

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate"
)

// RevokeOptions of `plana keys revoke`.
type RevokeOptions struct {
	StepDeps

	Key         string
	QuietPeriod time.Duration
	Yes         bool
	Force       bool
	DryRun      bool
	Output      string
}

// NewCmdRevoke builds `plana keys revoke KEY`.
func NewCmdRevoke(f *cmdutil.Factory, runF func(context.Context, *RevokeOptions) error) *cobra.Command {
	o := &RevokeOptions{StepDeps: stepDeps(f)}
	cmd := newStepCmd(&cobra.Command{
		Use:   "revoke KEY",
		Short: "Step 5: revoke the old key, refused while the gate does not hold",
		Long: `Revoke KEY, the old key of a rotation under way. Refused (exit 3) while the gate
of step 3 does not hold, unless --force. Afterwards plana checks the key is refused
(when its plaintext is in the keyring), deletes its plaintext from the keyring and
logs the rotation. A revoked key can never be re-enabled.

With no rotation of KEY under way (no successor the caller trusts: a key that only
claims to replace KEY does not count) it refuses and revokes nothing. --force then
revokes KEY with nothing to replace it: for a key nobody should use, such as a
successor an emergency passed over or a claimant it listed.`,
		Example: `  $ plana keys revoke pa_live_AB7K2XYZ --yes`,
		Args:    cmdutil.ExactArgs(1, "KEY"),
	}, o, &o.Key, &o.Output, nil, runF, revokeRun)
	durationFlag(cmd, &o.QuietPeriod, "quiet-period", "how long the key must have been unused")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&o.Force, "force", false, "revoke even though the gate does not hold (loudly)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would happen, change nothing")
	return cmd
}

func revokeRun(ctx context.Context, o *RevokeOptions) error {
	eo := rotate.Options{QuietPeriod: o.QuietPeriod, Yes: o.Yes, Force: o.Force, DryRun: o.DryRun}
	return o.runStep(ctx, o.Key, o.Output, eo, func(r *rotate.Rotator) stepFunc { return r.Revoke })
}
