package auth

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
)

// LogoutOptions of `plana auth logout`.
type LogoutOptions struct {
	IO      *iostreams.IOStreams
	Config  func() (*config.Config, error)
	Secrets func() (secret.Store, error)
	Getenv  func(string) string
}

// NewCmdLogout builds `plana auth logout`.
func NewCmdLogout(f *cmdutil.Factory, runF func(*LogoutOptions) error) *cobra.Command {
	opts := &LogoutOptions{IO: f.IOStreams, Config: f.Config, Secrets: f.Secrets, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Remove the stored management key from the OS keyring",
		Long: `Remove the current profile's management key from the OS keyring.

The key stays valid in BOS: revoke it there (or with "plana keys revoke") if nobody
needs it any more.`,
		Args: cmdutil.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return logoutRun(opts)
		},
	}
	return cmd
}

func logoutRun(opts *LogoutOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	store, err := opts.Secrets()
	if err != nil {
		return err
	}
	tok, err := cmdutil.ForgetToken(store, cfg.Profile())
	if errors.Is(err, secret.ErrNotFound) {
		return fmt.Errorf("not logged in (profile %s): no key stored in the keyring", cfg.Profile())
	}
	if err != nil {
		return fmt.Errorf("removing the key from the keyring: %w", err)
	}
	cs := opts.IO.ColorScheme()
	fmt.Fprintf(opts.IO.ErrOut, "%s Logged out of profile %s: key %s removed from the keyring (it is still valid in BOS)\n",
		cs.SuccessIcon(), cfg.Profile(), client.PrefixOf(tok))
	if opts.Getenv("PLANA_TOKEN") != "" {
		fmt.Fprintf(opts.IO.ErrOut, "%s PLANA_TOKEN is still set in this environment, and plana will keep using it\n", cs.WarningIcon())
	}
	return nil
}
