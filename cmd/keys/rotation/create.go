package rotation

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate"
)

// CreateOptions of `plana keys create`.
type CreateOptions struct {
	StepDeps

	Like        string
	DryRun      bool
	PrintSecret bool
	Output      string
}

// NewCmdCreate builds `plana keys create --like KEY`.
func NewCmdCreate(f *cmdutil.Factory, runF func(context.Context, *CreateOptions) error) *cobra.Command {
	o := &CreateOptions{StepDeps: stepDeps(f)}
	cmd := newStepCmd(&cobra.Command{
		Use:   "create --like KEY",
		Short: "Step 1: create a key like another, plaintext straight into the keyring",
		Long: `Create a new key with the same scopes and description as KEY, named like it with
the current year ("Nightly stock sync (2026)"). The plaintext goes into the OS
keyring only (plana keys secret prints it). A create whose answer is lost is
recovered on the next run, never duplicated.`,
		Example: `  $ plana keys create --like "Nightly stock sync (2025)"`,
		Args:    cmdutil.NoArgs,
	}, o, nil, &o.Output, o.validate, runF, createRun)
	cmd.Flags().StringVar(&o.Like, "like", "", "the key to follow (id, prefix or name)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "say what would be created, change nothing")
	cmd.Flags().BoolVar(&o.PrintSecret, "print-secret", false, "print the new plaintext once to stdout")
	return cmd
}

func (o *CreateOptions) validate() error {
	if o.Like == "" {
		return cmdutil.FlagErrorf("--like KEY required: the key whose scopes and name to follow")
	}
	return checkPrintSecret(o.IO, o.PrintSecret, o.Output)
}

func createRun(ctx context.Context, o *CreateOptions) error {
	eo := rotate.Options{DryRun: o.DryRun, PrintSecret: o.PrintSecret}
	return o.runStep(ctx, o.Like, o.Output, eo, func(r *rotate.Rotator) stepFunc { return r.Create })
}
