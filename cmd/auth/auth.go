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
  2. the OS keyring entry stored by "plana auth login" for the current profile

A stored key is bound to the API origin (scheme://host:port) it was stored for and is
never sent to another: point plana at another API and it asks for "plana auth login"
there first. PLANA_TOKEN is not bound; whoever sets it chooses the API too.`,
	})
	cmd.AddCommand(NewCmdLogin(f, nil), NewCmdStatus(f, nil), NewCmdLogout(f, nil))
	return cmd
}
