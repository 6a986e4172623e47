package keys

import (
	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
)

// rotationCommands are rotate, create, deploy, verify, revoke, status, log
// and due. They live in cmd/keys/rotation; wire them in here:
//
//	return rotation.NewCmds(f)
func rotationCommands(f *cmdutil.Factory) []*cobra.Command {
	_ = f
	return nil
}
