// Package keys is `plana keys`: the read-only views of a workspace's keys
// here, and the rotation commands registered from cmd/keys/rotation.
package keys

import (
	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
)

// NewCmdKeys builds `plana keys` and its subcommands.
func NewCmdKeys(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.GroupCommand(&cobra.Command{
		Use:   "keys <command>",
		Short: "List, inspect and rotate BOS API keys",
		Long: `List, inspect and rotate BOS API keys.

KEY may be a key id (key_…), a public prefix (pa_live_AB7K2XYZ) or an exact name.
A name shared by several keys is an error listing them, unless exactly one of them
is active.`,
	})
	cmd.AddCommand(NewCmdList(f, nil), NewCmdShow(f, nil), NewCmdSecret(f, nil), NewCmdAudit(f, nil))
	cmd.AddCommand(rotationCommands(f)...)
	return cmd
}
