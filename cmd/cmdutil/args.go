package cmdutil

import (
	"errors"
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

// UsageErrors makes every argument and flag error of root's tree a usage
// error (exit 2). cobra's own validators (MaximumNArgs, RangeArgs,
// MarkFlagRequired, MarkFlagsMutuallyExclusive…) return plain errors, which
// would exit 1 like a failure. Call it once the tree is built; a command
// that sets its own PersistentPreRunE must check its flag groups itself.
func UsageErrors(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Args != nil {
			c.Args = asUsage(c.Args)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	// cobra checks required flags and flag groups after the pre-run hooks,
	// so checking them here first is what lets their errors be wrapped.
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if err := c.ValidateRequiredFlags(); err != nil {
			return FlagErrorf("%v; usage: %s", err, c.UseLine())
		}
		if err := c.ValidateFlagGroups(); err != nil {
			return FlagErrorf("%v; usage: %s", err, c.UseLine())
		}
		return nil
	}
}

func asUsage(args cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		err := args(cmd, a)
		var fe *FlagError
		if err == nil || errors.As(err, &fe) {
			return err
		}
		return FlagErrorf("%s: %v; usage: %s", cmd.CommandPath(), err, cmd.UseLine())
	}
}
