package keys

import (
	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/keys/rotation"
)

// rotationCommands are rotate, create, deploy, verify, revoke, status, log
// and due: the steps of the procedure, built on package rotate.
func rotationCommands(f *cmdutil.Factory) []*cobra.Command {
	return rotation.NewCmds(f)
}
