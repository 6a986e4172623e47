package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
)

// SecretOptions of `plana keys secret`.
type SecretOptions struct {
	IO      *iostreams.IOStreams
	Client  func() (*client.Client, error)
	Secrets func() (secret.Store, error)

	Key      string
	ForceTTY bool
}

// NewCmdSecret builds `plana keys secret`.
func NewCmdSecret(f *cmdutil.Factory, runF func(context.Context, *SecretOptions) error) *cobra.Command {
	opts := &SecretOptions{IO: f.IOStreams, Client: f.Client, Secrets: f.Secrets}
	cmd := &cobra.Command{
		Use:   "secret KEY",
		Short: "Print a key's plaintext from the OS keyring, for piping",
		Long: `Write the plaintext of a key plana created (and stored in the OS keyring) to
standard output, for piping into a secrets manager. No newline is added when
stdout is not a terminal.

Printing to a terminal is refused unless --force-tty is given: screens are shared
and scrollback is kept.

BOS keeps only a hash of every key, so a plaintext that is not in this keyring
cannot be recovered from anywhere: rotate the key instead.`,
		Example: `  $ plana keys secret "Nightly stock sync (2026)" |
      vault kv put secret/stock-sync PLANA_KEY=-
  $ plana keys secret key_01J... | gh secret set PLANA_KEY`,
		Args: cmdutil.ExactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key = args[0]
			if opts.IO.IsStdoutTTY() && !opts.ForceTTY {
				return cmdutil.FlagErrorf("refusing to print a key to a terminal: pipe it into your secrets manager " +
					"(plana keys secret KEY | ...), or pass --force-tty")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return secretRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.ForceTTY, "force-tty", false, "print the plaintext even when stdout is a terminal")
	return cmd
}

func secretRun(ctx context.Context, opts *SecretOptions) error {
	// An id needs no lookup, so a cron job piping a known key works even
	// while BOS is unreachable.
	id, label := opts.Key, opts.Key
	if !strings.HasPrefix(opts.Key, "key_") {
		c, err := opts.Client()
		if err != nil {
			return err
		}
		k, err := cmdutil.ResolveKey(ctx, c, opts.Key)
		if err != nil {
			return err
		}
		id, label = k.ID, fmt.Sprintf("%s (%s, %s)", k.Name, k.Prefix, k.ID)
	}
	store, err := opts.Secrets()
	if err != nil {
		return err
	}
	v, err := store.Get(secret.KeyName(id))
	if errors.Is(err, secret.ErrNotFound) {
		return fmt.Errorf("no plaintext of %s in this keyring.\n"+
			"BOS stores only a hash, so the plaintext cannot be recovered: only whoever created the key ever had it, "+
			"and plana keeps it only for keys it created on this machine. If it is lost, rotate the key: plana keys rotate %s",
			label, id)
	}
	if err != nil {
		return fmt.Errorf("reading the plaintext of %s: %w", label, err)
	}
	if opts.IO.IsStdoutTTY() {
		v += "\n"
	}
	_, err = io.WriteString(opts.IO.Out, v)
	return err
}
