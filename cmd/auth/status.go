package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/textsafe"
)

// StatusOptions of `plana auth status`.
type StatusOptions struct {
	IO        *iostreams.IOStreams
	Config    func() (*config.Config, error)
	Token     func() (cmdutil.Token, error)
	ClientFor func(keys ...string) (*client.Client, error)

	Output string
}

// Status is `plana auth status -o json`. It never carries the token itself.
type Status struct {
	APIURL      string           `json:"api_url" yaml:"api_url"`
	Profile     string           `json:"profile" yaml:"profile"`
	User        client.User      `json:"user" yaml:"user"`
	Workspace   client.Workspace `json:"workspace" yaml:"workspace"`
	TokenSource string           `json:"token_source" yaml:"token_source"`
	TokenPrefix string           `json:"token_prefix" yaml:"token_prefix"`
	TokenKeyID  string           `json:"token_key_id" yaml:"token_key_id"`
	Scopes      []string         `json:"scopes" yaml:"scopes"`
}

// NewCmdStatus builds `plana auth status`.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IOStreams, Config: f.Config, Token: f.Token, ClientFor: f.ClientFor}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show who plana acts as",
		Long: `Show the BOS user, workspace and role plana acts as, and where its key comes from
(PLANA_TOKEN or the OS keyring). Only the key's public prefix is ever shown.

Exits 4 when no key is found or BOS refuses it.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
	cfg, err := opts.Config()
	if err != nil {
		return err
	}
	tok, err := opts.Token()
	if err != nil {
		return err
	}
	c, err := opts.ClientFor(tok.Value())
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if errors.Is(err, client.ErrUnauthenticated) {
		return fmt.Errorf("BOS at %s refused key %s from %s (revoked?): %w", cfg.APIURL(), tok.Prefix(), tok.Source, err)
	}
	if err != nil {
		return fmt.Errorf("asking BOS at %s who key %s belongs to: %w", cfg.APIURL(), tok.Prefix(), err)
	}
	st := Status{APIURL: cfg.APIURL(), Profile: cfg.Profile(), User: me.User, Workspace: me.Workspace,
		TokenSource: string(tok.Source), TokenPrefix: tok.Prefix(), TokenKeyID: me.Key.ID, Scopes: me.Key.Scopes}
	if opts.Output != cmdutil.FormatTable {
		return cmdutil.PrintObject(opts.IO.Out, opts.Output, st)
	}
	cs := opts.IO.ColorScheme()
	w := opts.IO.Out
	// Names, emails and scopes are the server's words, typed by people.
	fmt.Fprintf(w, "%s Logged in to %s\n", cs.SuccessIcon(), st.APIURL)
	fmt.Fprintf(w, "  Account:    %s (%s)\n", textsafe.Clean(st.User.Email), textsafe.Clean(st.User.Role))
	fmt.Fprintf(w, "  Workspace:  %s (%s)\n", textsafe.Clean(st.Workspace.Name), textsafe.Clean(st.Workspace.ID))
	fmt.Fprintf(w, "  Key:        %s %q (from %s, profile %s)\n", st.TokenPrefix, me.Key.Name, st.TokenSource, st.Profile)
	fmt.Fprintf(w, "  Scopes:     %s\n", textsafe.Clean(strings.Join(st.Scopes, ", ")))
	return nil
}
