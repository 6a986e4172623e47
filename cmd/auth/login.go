package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/internal/textsafe"
)

// LoginOptions of `plana auth login`.
type LoginOptions struct {
	IO        *iostreams.IOStreams
	Config    func() (*config.Config, error)
	ClientFor func(keys ...string) (*client.Client, error)
	Secrets   func() (secret.Store, error)
	Getenv    func(string) string

	WithToken bool
}

// NewCmdLogin builds `plana auth login`.
func NewCmdLogin(f *cmdutil.Factory, runF func(context.Context, *LoginOptions) error) *cobra.Command {
	opts := &LoginOptions{IO: f.IOStreams, Config: f.Config, ClientFor: f.ClientFor, Secrets: f.Secrets, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Store a BOS management key in the OS keyring",
		Long: `Store a BOS management key (scope keys:manage) for the current profile.

The key is read from a hidden prompt, or from stdin with --with-token; never from a
flag or an argument, where shell history and process lists would keep it. plana
checks the key's format offline, asks BOS who it belongs to (GET /v1/me), requires
the scope keys:manage, and stores it in the OS keyring, bound to that API's origin
(scheme://host:port): plana never sends it to another API.

Without an OS keyring (a headless server, CI), skip login and set PLANA_TOKEN instead.`,
		Example: `  $ plana auth login
  $ vault kv get -field=token secret/bos | plana auth login --with-token
  $ plana auth login --profile staging --with-token < staging-token.txt`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			if strings.HasPrefix(strings.TrimSpace(args[0]), "pa_") {
				return cmdutil.FlagErrorf("do not pass a key as an argument: shell history and process lists keep it (treat that key as exposed).\n" +
					"Pipe it on stdin instead: plana auth login --with-token < token.txt")
			}
			return cmdutil.FlagErrorf("plana auth login takes no arguments; got %q", args[0])
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !opts.WithToken && !opts.IO.CanPrompt() {
				return cmdutil.FlagErrorf("--with-token required when not running interactively: pipe the key on stdin")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return loginRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.WithToken, "with-token", false, "read the key from standard input")
	return cmd
}

func loginRun(ctx context.Context, opts *LoginOptions) error {
	cs := opts.IO.ColorScheme()
	var token string
	var err error
	if opts.WithToken {
		token, err = opts.IO.ReadAll()
	} else {
		token, err = opts.IO.PromptSecret("Paste a BOS management key (scope keys:manage): ")
	}
	if err != nil {
		return fmt.Errorf("reading the key: %w", err)
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return errors.New("no key given: paste a key that starts with pa_live_ or pa_test_")
	}
	if _, err := client.ParseKey(token); err != nil {
		return fmt.Errorf("that is not a BOS API key: %w", err)
	}
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	c, err := opts.ClientFor(token)
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if errors.Is(err, client.ErrUnauthenticated) {
		return &cmdutil.ExitError{Code: cmdutil.ExitAuth, Err: fmt.Errorf(
			"BOS at %s refused key %s: it is revoked, mistyped, or for another BOS (check --api-url / PLANA_API_URL)",
			cfg.APIURL(), client.PrefixOf(token))}
	}
	if err != nil {
		return fmt.Errorf("checking the key with BOS at %s: %w", cfg.APIURL(), err)
	}
	if !slices.Contains(me.Key.Scopes, client.ScopeManage) {
		return fmt.Errorf("key %s lacks the scope %s (it has: %s); create a management key in BOS → Settings → API keys",
			me.Key.Prefix, client.ScopeManage, textsafe.Clean(strings.Join(me.Key.Scopes, ", ")))
	}
	store, err := opts.Secrets()
	if err != nil {
		return err
	}
	if err := cmdutil.SaveToken(store, cfg.Profile(), token, cfg.APIURL()); err != nil {
		return fmt.Errorf("could not store the key: %w\n"+
			"Without a keyring, set PLANA_TOKEN in the environment instead (from your secrets manager)", err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%s Logged in to %s as %s (%s) with key %s; stored in the OS keyring for profile %s, for use with %s only\n",
		cs.SuccessIcon(), textsafe.Clean(me.Workspace.Name), textsafe.Clean(me.User.Email), textsafe.Clean(me.User.Role), me.Key.Prefix, cfg.Profile(), cfg.APIOrigin())
	if opts.Getenv("PLANA_TOKEN") != "" {
		fmt.Fprintf(opts.IO.ErrOut, "%s PLANA_TOKEN is set in this environment and takes precedence over the stored key\n", cs.WarningIcon())
	}
	return nil
}
