// Package configcmd is `plana config`: reading and writing settings.
package configcmd

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
)

// NewCmdConfig builds `plana config` and its subcommands.
func NewCmdConfig(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.GroupCommand(&cobra.Command{
		Use:   "config <command>",
		Short: "Read and write plana's settings",
		Long: `Read and write plana's settings for the current profile.

Settings: ` + strings.Join(config.Keys(), ", ") + `.
Precedence: flag, then environment (see "plana help environment"), then the config
file ($XDG_CONFIG_HOME/plana/config.yaml, one section per profile), then defaults.`,
	})
	cmd.AddCommand(NewCmdGet(f, nil), NewCmdSet(f, nil), NewCmdList(f, nil))
	return cmd
}

func completeKeys(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return config.Keys(), cobra.ShellCompDirectiveNoFileComp
}
