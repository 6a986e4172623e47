package configcmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
)

// GetOptions of `plana config get`.
type GetOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Key    string
}

// NewCmdGet builds `plana config get`.
func NewCmdGet(f *cmdutil.Factory, runF func(*GetOptions) error) *cobra.Command {
	opts := &GetOptions{IO: f.IOStreams, Config: f.Config}
	return &cobra.Command{
		Use:               "get KEY",
		Short:             "Print the value of a setting in force",
		Example:           "  $ plana config get rotation.cadence",
		Args:              cmdutil.ExactArgs(1, "KEY"),
		ValidArgsFunction: completeKeys,
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Key = args[0]
			if runF != nil {
				return runF(opts)
			}
			return getRun(opts)
		},
	}
}

func getRun(opts *GetOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	v, err := cfg.Get(opts.Key)
	if err != nil {
		return &cmdutil.FlagError{Err: err}
	}
	_, err = fmt.Fprintln(opts.IO.Out, v)
	return err
}
