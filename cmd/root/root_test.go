package root_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/cmd/root"
	"github.com/plana-cli/plana/internal/secret"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(e *cmdtest.Env, args ...string) int {
	e.Out.Reset()
	e.ErrOut.Reset()
	cmd := root.NewCmdRoot(e.Factory)
	e.BindFlags(cmd.PersistentFlags())
	return root.Run(context.Background(), cmd, e.IO, args)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestHelpGolden(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	if code := run(e, "--help"); code != 0 {
		t.Fatalf("exit %d: %s", code, e.ErrOut)
	}
	golden(t, "help.golden", e.Out.String())
	for _, want := range []string{"0 done", "2 usage", "3 gate not met yet", "4 not authenticated", "5 keys due", "exit-codes", "environment"} {
		if !strings.Contains(e.Out.String(), want) {
			t.Errorf("plana --help lacks %q", want)
		}
	}
}

func TestHelpTopics(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	if code := run(e, "help", "exit-codes"); code != 0 || !strings.Contains(e.Out.String(), "130  interrupted") {
		t.Errorf("help exit-codes: exit %d\n%s", code, e.Out)
	}
	if code := run(e, "help", "environment"); code != 0 {
		t.Fatalf("help environment: exit %d", code)
	}
	for _, v := range []string{"PLANA_TOKEN", "PLANA_API_URL", "PLANA_PROFILE", "PLANA_POLL_INTERVAL", "PLANA_ROTATION_CADENCE", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "NO_COLOR"} {
		if !strings.Contains(e.Out.String(), v) {
			t.Errorf("help environment lacks %s", v)
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(e *cmdtest.Env)
		args    []string
		code    int
		wantErr string
	}{
		{name: "ok", args: []string{"keys", "list"}, code: 0},
		{name: "unknown command", args: []string{"kyes"}, code: 2, wantErr: `unknown command "kyes"`},
		{name: "unknown subcommand", args: []string{"keys", "lst"}, code: 2, wantErr: "list"},
		{name: "unknown flag", args: []string{"keys", "list", "--colour"}, code: 2, wantErr: "--colour"},
		{name: "bad output format", args: []string{"keys", "list", "-o", "xml"}, code: 2, wantErr: "table, json, yaml, csv"},
		{name: "missing KEY", args: []string{"keys", "show"}, code: 2, wantErr: "missing KEY"},
		{name: "bad config value", setup: func(e *cmdtest.Env) { e.Setenv("PLANA_POLL_INTERVAL", "often") },
			args: []string{"keys", "list"}, code: 1, wantErr: "PLANA_POLL_INTERVAL"},
		{name: "not logged in", setup: func(e *cmdtest.Env) { _ = e.Store.Delete(secret.TokenName("default")) },
			args: []string{"keys", "list"}, code: 4, wantErr: "Try: plana auth login"},
		{name: "other profile not logged in", args: []string{"keys", "list", "--profile", "staging"}, code: 4, wantErr: "staging"},
		{name: "revoked token", setup: func(e *cmdtest.Env) {
			me, err := e.AdminClient().Me(context.Background())
			if err != nil {
				e.T.Fatal(err)
			}
			if _, err := e.AdminClient().RevokeKey(context.Background(), me.Key.ID); err != nil {
				e.T.Fatal(err)
			}
		}, args: []string{"keys", "list"}, code: 4, wantErr: "Try: plana auth login"},
		{name: "unreachable API", args: []string{"keys", "list", "--api-url", "http://127.0.0.1:1"}, code: 1, wantErr: "127.0.0.1:1"},
		{name: "bad api-url", args: []string{"keys", "list", "--api-url", "bos.example.com"}, code: 1, wantErr: "api_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := cmdtest.New(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			code := run(e, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, e.ErrOut)
			}
			if !strings.Contains(e.ErrOut.String(), tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, e.ErrOut)
			}
		})
	}
}

// The rotation commands return these; the mapping must hold for them too.
func TestTypedErrorsMapToExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		code int
	}{
		{cmdutil.Pendingf("the old key was used 3 minutes ago"), 3},
		{&cmdutil.ExitError{Code: cmdutil.ExitDue, Err: errors.New("2 keys due")}, 5},
		{&cmdutil.ExitError{Code: cmdutil.ExitDue, Err: cmdutil.ErrSilent}, 5},
		{fmt.Errorf("wrapped: %w", cmdutil.ErrCancel), 130},
		{cmdutil.ErrSilent, 1},
		{&client.APIError{StatusCode: 401}, 4},
		{&client.APIError{StatusCode: 403}, 1},
		{cmdutil.FlagErrorf("bad"), 2},
	}
	e := cmdtest.New(t)
	for _, tt := range tests {
		e.ErrOut.Reset()
		cmd := root.NewCmdRoot(e.Factory)
		e.BindFlags(cmd.PersistentFlags())
		cmd.AddCommand(&cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error { return tt.err }})
		if code := root.Run(context.Background(), cmd, e.IO, []string{"fail"}); code != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.err, code, tt.code)
		}
		if errors.Is(tt.err, cmdutil.ErrSilent) && e.ErrOut.Len() != 0 {
			t.Errorf("ErrSilent printed %q", e.ErrOut)
		}
	}
}
