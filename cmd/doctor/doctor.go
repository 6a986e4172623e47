// Package doctor is `plana doctor`: every check plana's work depends on, each
// failure with how to fix it.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/configcmd"
	"github.com/plana-cli/plana/config"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/internal/textsafe"
	"github.com/plana-cli/plana/rotate"
)

// maxSkew is the clock difference worth a warning. The revoke gate uses the
// server's time anyway; a skewed clock only makes local times misleading.
const maxSkew = time.Minute

// Options of `plana doctor`.
type Options struct {
	IO        *iostreams.IOStreams
	Config    func() (*config.Config, error)
	Token     func() (cmdutil.Token, error)
	ClientFor func(keys ...string) (*client.Client, error)
	Secrets   func() (secret.Store, error)
	Now       func() time.Time
	StateDir  func() (string, error)

	Output string
}

// Status of a check.
type Status string

const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Check is one line of the report; its field names are part of -o json.
type Check struct {
	Name    string   `json:"name" yaml:"name"`
	Status  Status   `json:"status" yaml:"status"`
	Summary string   `json:"summary" yaml:"summary"`
	Details []string `json:"details,omitempty" yaml:"details,omitempty"`
	Fix     string   `json:"fix,omitempty" yaml:"fix,omitempty"`
}

// Report is `plana doctor -o json`.
type Report struct {
	OK     bool    `json:"ok" yaml:"ok"`
	Checks []Check `json:"checks" yaml:"checks"`
}

// NewCmdDoctor builds `plana doctor`.
func NewCmdDoctor(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Token: f.Token, ClientFor: f.ClientFor,
		Secrets: f.Secrets, Now: f.Now, StateDir: f.StateDir}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that plana can do its work here",
		Long: `Check everything plana depends on: the OS keyring (a real write, read and delete),
the configuration in force and where each value comes from, the management key and
who it belongs to, the API's reachability and latency, the clock against the
server's, the state directory's permissions, and unfinished rotations.

Every failed check says how to fix it. Exits 1 if any check failed; a warning
(a missing keyring on a machine that runs on PLANA_TOKEN, unfinished rotations, a
skewed clock) does not.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return doctorRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output, cmdutil.FormatTable, cmdutil.FormatJSON, cmdutil.FormatYAML)
	return cmd
}

func doctorRun(ctx context.Context, opts *Options) error {
	checks := []Check{checkKeyring(opts)}
	cfg, cfgCheck := checkConfig(opts)
	checks = append(checks, cfgCheck)
	if cfg != nil {
		checks = append(checks, checkAPI(ctx, opts, cfg)...)
	}
	checks = append(checks, checkState(opts)...)

	rep := Report{OK: true, Checks: checks}
	for _, c := range checks {
		if c.Status == StatusFail {
			rep.OK = false
		}
	}
	if opts.Output != cmdutil.FormatTable {
		if err := cmdutil.PrintObject(opts.IO.Out, opts.Output, rep); err != nil {
			return err
		}
	} else {
		printReport(opts.IO, rep)
	}
	if !rep.OK {
		return cmdutil.ErrSilent
	}
	return nil
}

func printReport(ios *iostreams.IOStreams, rep Report) {
	cs := ios.ColorScheme()
	w := ios.Out
	for _, c := range rep.Checks {
		icon := cs.SuccessIcon()
		switch c.Status {
		case StatusWarn:
			icon = cs.WarningIcon()
		case StatusFail:
			icon = cs.FailureIcon()
		}
		fmt.Fprintf(w, "%s %s: %s\n", icon, cs.Bold(c.Name), c.Summary)
		for _, d := range c.Details {
			fmt.Fprintf(w, "    %s\n", d)
		}
		if c.Fix != "" {
			fmt.Fprintf(w, "    %s %s\n", cs.Bold("Fix:"), c.Fix)
		}
	}
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func checkKeyring(opts *Options) Check {
	c := Check{Name: "Keyring"}
	store, err := opts.Secrets()
	if err == nil {
		start := time.Now()
		err = secret.Probe(store)
		if err == nil {
			c.Status, c.Summary = StatusOK, "the OS keyring stored, returned and deleted a probe entry in "+ms(time.Since(start))
			return c
		}
	}
	c.Status, c.Summary = StatusFail, err.Error()
	c.Fix = "start and unlock a Secret Service provider (e.g. gnome-keyring-daemon) or the OS keychain. " +
		"Without one, plana can still act with PLANA_TOKEN, but it cannot create keys unless you deploy them at once (--to) or pass --print-secret"
	// A machine that runs on PLANA_TOKEN alone (cron, CI) has chosen to do
	// without a keyring: that is how it is meant to work, not a fault.
	if tok, terr := opts.Token(); errors.Is(err, secret.ErrUnavailable) && terr == nil && tok.Source == cmdutil.TokenFromEnv {
		c.Status = StatusWarn
		c.Summary = "no OS keyring here; plana uses PLANA_TOKEN, and new keys must go straight to their targets (--to): " + err.Error()
		c.Fix = "nothing, if this machine runs on PLANA_TOKEN alone (cron, CI); otherwise start and unlock a Secret Service provider (e.g. gnome-keyring-daemon) or the OS keychain"
	}
	return c
}

func checkConfig(opts *Options) (*config.Config, Check) {
	c := Check{Name: "Config"}
	cfg, err := opts.Config()
	if err != nil {
		c.Status, c.Summary = StatusFail, err.Error()
		c.Fix = "correct the value named above (plana config set KEY VALUE, or edit the file), or unset the variable"
		return nil, c
	}
	file := "not present, defaults apply"
	if _, err := os.Stat(cfg.Path()); err == nil {
		file = "present"
	}
	settings, err := configcmd.Settings(cfg)
	if err != nil {
		c.Status, c.Summary = StatusFail, err.Error()
		return nil, c
	}
	c.Status = StatusOK
	c.Summary = fmt.Sprintf("profile %s (from %s), file %s (%s)", cfg.Profile(), cfg.ProfileSource(), cfg.Path(), file)
	for _, s := range settings {
		v := s.Value
		if v == "" {
			v = `""`
		}
		c.Details = append(c.Details, fmt.Sprintf("%s = %s (%s)", s.Key, v, s.Source))
	}
	return cfg, c
}

func checkAPI(ctx context.Context, opts *Options, cfg *config.Config) []Check {
	tokCheck := Check{Name: "Token"}
	tok, tokErr := opts.Token()
	var keys []string
	if tokErr == nil {
		keys = []string{tok.Value()}
	}
	apiCheck := Check{Name: "API"}
	c, err := opts.ClientFor(keys...)
	if err != nil {
		apiCheck.Status, apiCheck.Summary = StatusFail, err.Error()
		apiCheck.Fix = "set api_url to the BOS base URL: plana config set api_url https://…"
		return []Check{apiCheck}
	}
	start := time.Now()
	me, meErr := c.Me(ctx)
	latency := time.Since(start)

	var apiErr *client.APIError
	reached := meErr == nil || errors.As(meErr, &apiErr)
	if reached {
		apiCheck.Status, apiCheck.Summary = StatusOK, fmt.Sprintf("%s answered GET /v1/me in %s", cfg.APIURL(), ms(latency))
	} else {
		apiCheck.Status, apiCheck.Summary = StatusFail, fmt.Sprintf("%s unreachable: %v", cfg.APIURL(), meErr)
		apiCheck.Fix = "check api_url (" + cfg.Source(config.KeyAPIURL).String() + ") and that BOS (or bos-emulator) is running"
	}

	switch {
	case tokErr != nil:
		tokCheck.Status, tokCheck.Summary = StatusFail, tokErr.Error()
		tokCheck.Fix = "run plana auth login, or set PLANA_TOKEN"
	case !reached:
		tokCheck.Status, tokCheck.Summary = StatusWarn, fmt.Sprintf("%s from %s, not checked: the API is unreachable", tok.Prefix(), tok.Source)
	case errors.Is(meErr, client.ErrUnauthenticated):
		tokCheck.Status, tokCheck.Summary = StatusFail, fmt.Sprintf("%s from %s was refused by BOS (revoked?)", tok.Prefix(), tok.Source)
		tokCheck.Fix = "log in again with a valid management key: plana auth login"
	case meErr != nil:
		tokCheck.Status, tokCheck.Summary = StatusFail, fmt.Sprintf("%s from %s: %v", tok.Prefix(), tok.Source, meErr)
	default:
		tokCheck.Status = StatusOK
		// The email, role and workspace name are the server's words.
		tokCheck.Summary = fmt.Sprintf("%s from %s: %s (%s) in %s", tok.Prefix(), tok.Source,
			textsafe.Clean(me.User.Email), textsafe.Clean(me.User.Role), textsafe.Clean(me.Workspace.Name))
		if !slices.Contains(me.Key.Scopes, client.ScopeManage) {
			tokCheck.Status = StatusFail
			tokCheck.Fix = "this key lacks the scope keys:manage; log in with a management key: plana auth login"
		}
	}

	checks := []Check{apiCheck, tokCheck}
	if srv, ok := c.ServerNow(); ok {
		skew := opts.Now().Sub(srv)
		clk := Check{Name: "Clock", Status: StatusOK,
			Summary: fmt.Sprintf("local clock within %s of the server's (Date header, 1 s resolution)", skew.Abs().Round(time.Second))}
		if skew.Abs() > maxSkew {
			clk.Status = StatusWarn
			clk.Summary = fmt.Sprintf("local clock is %s off the server's; plana gates on the server's time, but local times will look wrong", skew.Round(time.Second))
			clk.Fix = "enable time synchronisation (timedatectl set-ntp true, or your OS's equivalent)"
		}
		checks = append(checks, clk)
	}
	return checks
}

func checkState(opts *Options) []Check {
	c := Check{Name: "State"}
	dir, err := opts.StateDir()
	if err != nil {
		c.Status, c.Summary, c.Fix = StatusFail, err.Error(), "set HOME or XDG_STATE_HOME"
		return []Check{c}
	}
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		c.Status, c.Summary = StatusOK, dir+" does not exist yet; the first rotation creates it (mode 0700)"
		return []Check{c}
	}
	if err != nil {
		c.Status, c.Summary = StatusFail, err.Error()
		return []Check{c}
	}
	var bad []string
	if st.Mode().Perm() != 0o700 {
		bad = append(bad, fmt.Sprintf("%s is mode %04o, want 0700", dir, st.Mode().Perm()))
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			bad = append(bad, fmt.Sprintf("%s is mode %04o, want %04o", p, info.Mode().Perm(), want))
		}
		return nil
	})
	c.Status, c.Summary = StatusOK, dir+": only you can read it"
	if len(bad) > 0 {
		c.Status, c.Summary, c.Details = StatusFail, dir+": readable by others", bad
		c.Fix = fmt.Sprintf("chmod -R go-rwx %s", dir)
	}
	checks := []Check{c}

	// A damaged journal is a rotation left unfinished too: rotate KEY
	// rebuilds it (--rebuild) or says why it cannot.
	inv := rotate.Rotations(dir)
	rot := Check{Name: "Rotations", Status: StatusOK, Summary: "no unfinished rotations"}
	if n := len(inv.Unfinished) + len(inv.Damaged); n > 0 {
		rot.Status = StatusWarn
		rot.Summary = fmt.Sprintf("%d unfinished rotation(s) in %s", n, inv.Dir)
		rot.Fix = "resume each with plana keys rotate KEY (it picks up where it stopped)"
	}
	return append(checks, rot)
}
