package configcmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
)

// SetOptions of `plana config set`.
type SetOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Key    string
	Value  string
}

// NewCmdSet builds `plana config set`.
func NewCmdSet(f *cmdutil.Factory, runF func(*SetOptions) error) *cobra.Command {
	opts := &SetOptions{IO: f.IOStreams, Config: f.Config}
	return &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Write a setting to the config file",
		Long: `Write a setting to the current profile's section of the config file. The value is
checked first; an empty value removes the setting. Durations take Go syntax plus
days: 36h, 2d, 365d, 1d12h.`,
		Example: `  $ plana config set api_url https://bos.example.com
  $ plana config set rotation.cadence 180d --profile staging
  $ plana config set rotation.cadence_overrides 'CI *=90d,Nightly*=365d'`,
		Args:              cmdutil.ExactArgs(2, "KEY", "VALUE"),
		ValidArgsFunction: completeKeys,
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Key, opts.Value = args[0], args[1]
			if runF != nil {
				return runF(opts)
			}
			return setRun(opts)
		},
	}
}

func setRun(opts *SetOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	if err := cfg.Set(opts.Key, opts.Value); err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	cs := opts.IO.ColorScheme()
	v, err := cfg.Get(opts.Key)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s %s = %q in %s (profile %s)\n", cs.SuccessIcon(), opts.Key, v, cfg.Path(), cfg.Profile())
	if src := cfg.Source(opts.Key); src.Kind != config.SourceFile {
		fmt.Fprintf(opts.IO.ErrOut, "%s %s overrides the file here, so the value in force is still the one from %s\n",
			cs.WarningIcon(), src, src)
	}
	return nil
}
