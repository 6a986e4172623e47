// Package auth is `plana auth`: storing, checking and removing the BOS
// management key plana acts with.
package auth

import (
	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
)

// NewCmdAuth builds `plana auth` and its subcommands.
func NewCmdAuth(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.GroupCommand(&cobra.Command{
		Use:   "auth <command>",
		Short: "Log in to BOS with a management key",
		Long: `plana acts with a BOS management key (scope keys:manage). It looks for one, in order:

  1. PLANA_TOKEN in the environment (CI, cron)
  2. the OS keyring entry stored by "plana auth login" for the current profile`,
	})
	cmd.AddCommand(NewCmdLogin(f, nil), NewCmdStatus(f, nil), NewCmdLogout(f, nil))
	return cmd
}
