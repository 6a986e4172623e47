// Package root assembles the plana command tree and maps errors to exit
// codes in one place.
package root

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/auth"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/configcmd"
	"github.com/plana-cli/plana/cmd/doctor"
	"github.com/plana-cli/plana/cmd/keys"
	"github.com/plana-cli/plana/cmd/version"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/internal/textsafe"
)

// NewCmdRoot builds the whole command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plana <command> <subcommand> [flags]",
		Short: "Rotate BOS API keys without downtime",
		Long: `plana rotates BOS API keys without downtime: it issues the new key, hands it to
your automation next to the old one, waits until the old key falls silent, and only
then revokes it.

Exit codes: 0 done, 1 error, 2 usage or configuration, 3 gate not met yet /
work pending, 4 not authenticated, 5 keys due, 6 suspicious calls found
(keys audit). See "plana help exit-codes".`,
		Example: `  $ plana auth login
  $ plana keys list
  $ plana keys rotate "Nightly stock sync (2025)" \
      --to env-file:/etc/stock-sync.env`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       f.Version,
	}
	cmdutil.GroupCommand(cmd)
	cmd.SetVersionTemplate("plana {{.Version}}\n")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cmdutil.FlagError{Err: err} })
	cmd.PersistentFlags().String("profile", "", `configuration profile (default "default", or $PLANA_PROFILE)`)
	cmd.PersistentFlags().String("api-url", "", "BOS API base URL (default from config or $PLANA_API_URL)")

	cmd.AddCommand(
		auth.NewCmdAuth(f),
		keys.NewCmdKeys(f),
		configcmd.NewCmdConfig(f),
		doctor.NewCmdDoctor(f, nil),
		version.NewCmdVersion(f, nil),
		newHelpTopic("exit-codes", "Exit codes and what they mean", exitCodesHelp),
		newHelpTopic("environment", "Environment variables plana reads", environmentHelp()),
	)
	// cobra adds `completion` only on Execute, as a group where an unknown
	// shell prints help and exits 0; made here, it refuses one like any group.
	// Its scripts go to the writer set at this point.
	cmd.SetOut(f.IOStreams.Out)
	cmd.InitDefaultCompletionCmd()
	if c, _, err := cmd.Find([]string{"completion"}); err == nil {
		cmdutil.GroupCommand(c)
	}
	// cobra's `help NOSUCH` prints the root's usage and exits 0; made here,
	// it refuses an unknown topic as a usage error.
	cmd.InitDefaultHelpCmd()
	if h, _, err := cmd.Find([]string{"help"}); err == nil && h != cmd {
		h.Args = helpTopicArgs
	}
	cmdutil.UsageErrors(cmd)
	return cmd
}

// Main runs plana with the process's arguments and environment and returns
// the exit code.
func Main() int {
	ios := iostreams.System()
	exe, _ := os.Executable()
	var rootCmd *cobra.Command
	f := cmdutil.New(cmdutil.FactoryOptions{
		IOStreams:  ios,
		Version:    version.Current().Version,
		Flags:      func() *pflag.FlagSet { return rootCmd.PersistentFlags() },
		Secrets:    keyringFromEnv,
		Executable: exe,
	})
	rootCmd = NewCmdRoot(f)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, rootCmd, f, os.Args[1:])
}

func keyringFromEnv() (secret.Store, error) {
	var d time.Duration
	if v := os.Getenv("PLANA_KEYRING_TIMEOUT"); v != "" {
		var err error
		if d, err = config.ParseDuration(v); err != nil || d <= 0 {
			return nil, fmt.Errorf("PLANA_KEYRING_TIMEOUT=%q: want a positive duration such as 3s or 10s", v)
		}
	}
	return secret.NewKeyring(d), nil
}

// Run executes cmd (built with f) with args and turns the outcome into an
// exit code, printing the error (and what to do next) to f's ErrOut.
func Run(ctx context.Context, cmd *cobra.Command, f *cmdutil.Factory, args []string) int {
	ios := f.IOStreams
	if err := refuseKeyArgs(args); err != nil {
		return exitCode(f, err)
	}
	cmd.SetArgs(args)
	cmd.SetIn(ios.In)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	_, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return cmdutil.ExitOK
	}
	// A command that says more than "cancelled" (where a rotation stopped,
	// how to resume it) keeps its words.
	var said *cmdutil.ExitError
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) && !errors.As(err, &said) {
		err = cmdutil.ErrCancel
	}
	return exitCode(f, err)
}

// refuseKeyArgs stops a key plaintext given on the command line before flag
// parsing, whose errors quote values, can echo it; it is in the shell history
// and the process list already, so the message says to rotate it.
func refuseKeyArgs(args []string) error {
	for i, a := range args {
		r := client.Redact(a)
		if r == a {
			continue
		}
		where := fmt.Sprintf("argument %d", i+1)
		if name, _, ok := strings.Cut(r, "="); ok && strings.HasPrefix(name, "-") {
			where = "the value of " + name
		} else if i > 0 && strings.HasPrefix(args[i-1], "-") && !strings.Contains(args[i-1], "=") {
			where = "the value of " + args[i-1]
		}
		end := strings.Index(r, "…")
		prefix := r[strings.LastIndex(r[:end], "pa_"):end]
		return cmdutil.FlagErrorf("%s holds a key plaintext (%s…): plana never takes a secret on the command line, where shell history and process lists keep it.\n"+
			"Treat that key as exposed and rotate it. Give a management key on stdin (plana auth login --with-token < FILE) or in PLANA_TOKEN, "+
			"and name other keys by id, prefix or name", where, prefix)
	}
	return nil
}

func exitCode(f *cmdutil.Factory, err error) int {
	w := f.IOStreams.ErrOut
	// An error may quote what BOS returned (a key's name, a server's
	// message): escaped, it can neither act on the terminal nor forge a
	// line, while plana's own newlines and tabs lay the message out.
	say := func(s string) { fmt.Fprintln(w, textsafe.CleanLines(s)) }
	var (
		flagErr    *cmdutil.FlagError
		authErr    *cmdutil.AuthError
		pendingErr *cmdutil.PendingError
		exitErr    *cmdutil.ExitError
	)
	// An explicit code comes first: `keys due` says "exit 5, already printed"
	// with an ExitError around ErrSilent, which must not fall back to 1.
	switch {
	case errors.As(err, &exitErr):
		if exitErr.Err != nil && !errors.Is(exitErr.Err, cmdutil.ErrSilent) {
			say(exitErr.Err.Error())
		}
		return exitErr.Code
	case errors.Is(err, cmdutil.ErrSilent):
		return cmdutil.ExitFailure
	case errors.Is(err, cmdutil.ErrCancel):
		say("cancelled")
		return cmdutil.ExitCancel
	case errors.As(err, &flagErr):
		say(flagErr.Error())
		return cmdutil.ExitUsage
	case errors.Is(err, config.ErrInvalid):
		// A setting from a flag, the environment or the file is input the
		// user gave, like a flag: every configuration error is a usage
		// error, whatever is wrong with it.
		say(err.Error())
		return cmdutil.ExitUsage
	case errors.As(err, &authErr), errors.Is(err, client.ErrUnauthenticated):
		say(err.Error())
		say("Try: plana auth login (or set PLANA_TOKEN)")
		return cmdutil.ExitAuth
	case errors.As(err, &pendingErr):
		say(err.Error())
		return cmdutil.ExitPending
	}
	say(err.Error())
	if hint := unreachableHint(f, err); hint != "" {
		say(hint)
	}
	return cmdutil.ExitFailure
}

// unreachableHint names the api_url in force, and where it came from, when
// err is BOS not answering at all (connection refused, no such host, a
// timeout): "connection refused" alone does not say which setting to fix.
func unreachableHint(f *cmdutil.Factory, err error) string {
	if _, ok := errors.AsType[net.Error](err); !ok {
		return ""
	}
	cfg, cerr := f.Config()
	if cerr != nil {
		return ""
	}
	return fmt.Sprintf("BOS did not answer at api_url %s (from %s): check the URL and that BOS (or bos-emulator) is running there.\n"+
		"Try: plana doctor", cfg.APIURL(), cfg.Source(config.KeyAPIURL))
}
