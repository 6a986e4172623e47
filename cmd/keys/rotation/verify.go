package rotation

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/rotate"
)

// VerifyOptions of `plana keys verify`.
type VerifyOptions struct {
	StepDeps

	Key          string
	Wait         bool
	QuietPeriod  time.Duration
	PollInterval time.Duration
	Timeout      time.Duration
	Output       string
}

// NewCmdVerify builds `plana keys verify KEY [--wait]`.
func NewCmdVerify(f *cmdutil.Factory, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
	o := &VerifyOptions{StepDeps: stepDeps(f)}
	cmd := newStepCmd(&cobra.Command{
		Use:   "verify KEY [--wait]",
		Short: "Step 3: is the new key in use and the old one quiet?",
		Long: `Check the gate of step 3 in the server's time: the new key used since it was
created, and the old key unused for the quiet period. While the old key is still
used it lists where from (source IP, user agent, path, count). Not met: exit 3.
--wait polls until it holds (or --timeout).` + stepFlagsHelp,
		Example: `  $ plana keys verify pa_live_AB7K2XYZ
  $ plana keys verify pa_live_AB7K2XYZ --wait --timeout 2d`,
		Args: cmdutil.ExactArgs(1, "KEY"),
	}, o, &o.Key, &o.Output, nil, runF, verifyRun)
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "poll until the gate holds")
	addWaitFlags(cmd, &o.QuietPeriod, &o.PollInterval, &o.Timeout)
	return cmd
}

func verifyRun(ctx context.Context, o *VerifyOptions) error {
	eo := rotate.Options{QuietPeriod: o.QuietPeriod, PollInterval: o.PollInterval, Timeout: o.Timeout, NoWait: !o.Wait}
	return o.runStep(ctx, o.Key, o.Output, eo, func(r *rotate.Rotator) stepFunc { return r.Verify })
}
