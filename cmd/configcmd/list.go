package configcmd

import (
	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
)

// ListOptions of `plana config list`.
type ListOptions struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Output string
}

// Setting is one line of `plana config list -o json`.
type Setting struct {
	Key    string        `json:"key" yaml:"key"`
	Value  string        `json:"value" yaml:"value"`
	Source config.Source `json:"source" yaml:"source"`
}

// List is `plana config list -o json`.
type List struct {
	Profile  string    `json:"profile" yaml:"profile"`
	File     string    `json:"file" yaml:"file"`
	Settings []Setting `json:"settings" yaml:"settings"`
}

// NewCmdList builds `plana config list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Config: f.Config}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the settings in force and where each comes from",
		Args:    cmdutil.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

// Settings lists every setting in force with its source.
func Settings(cfg *config.Config) ([]Setting, error) {
	var out []Setting
	for _, k := range config.Keys() {
		v, err := cfg.Get(k)
		if err != nil {
			return nil, err
		}
		out = append(out, Setting{Key: k, Value: v, Source: cfg.Source(k)})
	}
	return out, nil
}

func listRun(opts *ListOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	settings, err := Settings(cfg)
	if err != nil {
		return err
	}
	if opts.Output != cmdutil.FormatTable {
		return cmdutil.PrintObject(opts.IO.Out, opts.Output, List{Profile: cfg.Profile(), File: cfg.Path(), Settings: settings})
	}
	t := cmdutil.NewTablePrinter(opts.IO, "Key", "Value", "Source")
	for _, s := range settings {
		t.AddRow(s.Key, s.Value, s.Source.String())
	}
	return t.Render()
}
