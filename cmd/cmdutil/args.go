package cmdutil

import (
	"strings"

	"github.com/spf13/cobra"
)

// ExactArgs is cobra.ExactArgs as a usage error naming the missing
// arguments, e.g. ExactArgs(1, "KEY").
func ExactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		if len(args) < n {
			return FlagErrorf("missing %s; usage: %s", strings.Join(names[len(args):], " "), cmd.UseLine())
		}
		return FlagErrorf("too many arguments (%d, want %d); usage: %s", len(args), n, cmd.UseLine())
	}
}

// NoArgs refuses positional arguments with a usage error.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("%s takes no arguments; got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// GroupCommand makes cmd a pure parent: bare, it prints its help; with an
// unknown subcommand, it fails with a usage error and suggestions rather
// than printing help and exiting 0.
func GroupCommand(cmd *cobra.Command) *cobra.Command {
	// SuggestionsFor, unlike cobra's own path, has no default distance.
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := "unknown command " + `"` + args[0] + `"` + " for " + `"` + c.CommandPath() + `"`
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return FlagErrorf("%s\n\nRun '%s --help' for usage.", msg, c.CommandPath())
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}
