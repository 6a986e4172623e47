package root_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
	return root.Run(context.Background(), cmd, e.Factory, args)
}

// writeConfig writes the config file of e's environment.
func writeConfig(e *cmdtest.Env, text string) {
	dir := filepath.Join(e.Getenv("XDG_CONFIG_HOME"), "plana")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.T.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(text), 0o600); err != nil {
		e.T.Fatal(err)
	}
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
	for _, want := range []string{"0 done", "2 usage", "3 gate not met yet", "4 not authenticated", "5 keys due", "6 suspicious calls found", "exit-codes", "environment"} {
		if !strings.Contains(e.Out.String(), want) {
			t.Errorf("plana --help lacks %q", want)
		}
	}
}

func TestHelpTopics(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	if code := run(e, "help", "exit-codes"); code != 0 || !strings.Contains(e.Out.String(), "130  interrupted") || !strings.Contains(e.Out.String(), "6    suspicious calls found") {
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
			args: []string{"keys", "list"}, code: 2, wantErr: "PLANA_POLL_INTERVAL"},
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
		{name: "unreachable API", setup: func(e *cmdtest.Env) { e.Setenv("PLANA_TOKEN", e.Seed.AdminToken) },
			args: []string{"keys", "list", "--api-url", "http://127.0.0.1:1"}, code: 1,
			wantErr: "BOS did not answer at api_url http://127.0.0.1:1 (from flag --api-url): check the URL and that BOS (or bos-emulator) is running there.\nTry: plana doctor"},
		{name: "unreachable API from the file", setup: func(e *cmdtest.Env) {
			e.Setenv("PLANA_TOKEN", e.Seed.AdminToken)
			e.Setenv("PLANA_API_URL", "")
			writeConfig(e, "profiles:\n  default:\n    api_url: http://127.0.0.1:1\n")
		}, args: []string{"keys", "due"}, code: 1, wantErr: "api_url http://127.0.0.1:1 (from file "},
		// Every configuration error is a usage error, whatever is wrong.
		{name: "config not YAML", setup: func(e *cmdtest.Env) { writeConfig(e, "profiles: [\n") },
			args: []string{"keys", "list"}, code: 2, wantErr: "is not valid YAML"},
		{name: "config unknown top-level key", setup: func(e *cmdtest.Env) { writeConfig(e, "api_url: http://127.0.0.1:1\n") },
			args: []string{"keys", "list"}, code: 2, wantErr: "settings go under profiles.<name>"},
		{name: "config profiles not a map", setup: func(e *cmdtest.Env) { writeConfig(e, "profiles: [a]\n") },
			args: []string{"keys", "list"}, code: 2, wantErr: "profiles must be a map"},
		{name: "config unknown setting", setup: func(e *cmdtest.Env) { writeConfig(e, "profiles:\n  default:\n    poll: 1s\n") },
			args: []string{"keys", "list"}, code: 2, wantErr: `unknown config key "poll"`},
		{name: "config bad value in the file", setup: func(e *cmdtest.Env) { writeConfig(e, "profiles:\n  default:\n    poll_interval: often\n") },
			args: []string{"keys", "list"}, code: 2, wantErr: "poll_interval (from file "},
		{name: "config unreadable", setup: func(e *cmdtest.Env) {
			if err := os.MkdirAll(filepath.Join(e.Getenv("XDG_CONFIG_HOME"), "plana", "config.yaml"), 0o700); err != nil {
				e.T.Fatal(err)
			}
		}, args: []string{"keys", "list"}, code: 2, wantErr: "reading config"},
		{name: "bad profile name", args: []string{"keys", "list", "--profile", "Prod!"}, code: 2, wantErr: "invalid profile name"},
		{name: "stored token for another origin", args: []string{"keys", "list", "--api-url", "http://127.0.0.1:1"}, code: 4, wantErr: "run `plana auth login` for http://127.0.0.1:1"},
		{name: "plain http to a host", setup: func(e *cmdtest.Env) { e.Setenv("PLANA_TOKEN", e.Seed.AdminToken) },
			args: []string{"keys", "list", "--api-url", "http://bos.example.com"}, code: 2, wantErr: "use https://bos.example.com"},
		{name: "bad api-url", args: []string{"keys", "list", "--api-url", "bos.example.com"}, code: 2, wantErr: "api_url"},
		{name: "api-url with a path", args: []string{"keys", "due", "--api-url", "https://bos.example.com/v1"}, code: 2, wantErr: "(from flag --api-url): \"https://bos.example.com/v1\" has a path (/v1)"},
		{name: "PLANA_API_URL with a path", setup: func(e *cmdtest.Env) { e.Setenv("PLANA_API_URL", e.URL+"/v1") },
			args: []string{"auth", "status"}, code: 2, wantErr: "(from env PLANA_API_URL)"},
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
		{&cmdutil.ExitError{Code: cmdutil.ExitSuspicious, Err: cmdutil.ErrSilent}, 6},
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
		if code := root.Run(context.Background(), cmd, e.Factory, []string{"fail"}); code != tt.code {
			t.Errorf("%v: exit %d, want %d", tt.err, code, tt.code)
		}
		if errors.Is(tt.err, cmdutil.ErrSilent) && e.ErrOut.Len() != 0 {
			t.Errorf("ErrSilent printed %q", e.ErrOut)
		}
	}
}

// The keyring token is bound to the origin `auth login` stored it for: a
// PLANA_API_URL pointing elsewhere (a direnv file, say) is refused, and no
// request there carries a key.
func TestStoredTokenNeverLeavesItsOrigin(t *testing.T) {
	e := cmdtest.New(t)
	var withKey atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			withKey.Add(1)
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(other.Close)
	e.Setenv("PLANA_API_URL", other.URL)
	for _, args := range [][]string{{"keys", "list"}, {"auth", "status"}, {"keys", "due"}, {"doctor"}} {
		code := run(e, args...)
		want := cmdutil.ExitAuth
		if args[0] == "doctor" {
			want = cmdutil.ExitFailure
		}
		if code != want {
			t.Errorf("plana %s: exit %d, want %d; stderr:\n%s", strings.Join(args, " "), code, want, e.ErrOut)
		}
		out := e.ErrOut.String() + e.Out.String()
		for _, w := range []string{"was saved for " + e.URL, "run `plana auth login` for " + other.URL} {
			if !strings.Contains(out, w) {
				t.Errorf("plana %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
			}
		}
	}
	if n := withKey.Load(); n != 0 {
		t.Errorf("%d requests to the other origin carried a key, want 0", n)
	}

	// PLANA_TOKEN is the caller's own choice of token for this URL.
	e.Setenv("PLANA_TOKEN", e.Seed.AdminToken)
	if code := run(e, "keys", "list"); code != cmdutil.ExitFailure || withKey.Load() == 0 {
		t.Errorf("with PLANA_TOKEN: exit %d, %d requests with a key; want the other server asked (and its 418 an error)", code, withKey.Load())
	}
	e.AssertNoSecrets()
}

// Every usage error exits 2, whichever validator found it: cmdutil's,
// cobra's own (MaximumNArgs, flag groups, required flags), pflag's, or a
// setting's.
func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"keys", "rotate", "a", "b"}, "accepts at most 1 arg(s), received 2; usage: plana keys rotate [KEY]"},
		{[]string{"keys", "show", "a", "b"}, "too many arguments"},
		{[]string{"keys", "revoke"}, "missing KEY"},
		{[]string{"keys", "list", "x"}, "takes no arguments"},
		{[]string{"config", "set", "api_url"}, "missing VALUE"},
		{[]string{"auth", "login", "x"}, "takes no arguments"},
		{[]string{"completion", "fish", "x"}, `unknown command "x"`},
		{[]string{"help", "nosuch"}, `unknown help topic "nosuch"`},
		{[]string{"help", "keys", "lst"}, "Did you mean this?\n\tlist"},
		{[]string{"keys", "list", "--colour"}, "unknown flag: --colour"},
		{[]string{"keys", "list", "-o"}, "flag needs an argument"},
		{[]string{"keys", "rotate", "x", "--quiet-period", "5x"}, `invalid argument "5x"`},
		{[]string{"keys", "list", "--api-url", "https://bos.example.com/v1"}, "has a path"},
		{[]string{"kyes"}, `unknown command "kyes"`},
	}
	e := cmdtest.New(t)
	before, err := e.AdminClient().ListKeys(context.Background(), clientListAll())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if code := run(e, tt.args...); code != cmdutil.ExitUsage {
			t.Errorf("plana %s: exit %d, want 2; stderr:\n%s", strings.Join(tt.args, " "), code, e.ErrOut)
		}
		if !strings.Contains(e.ErrOut.String(), tt.wantErr) {
			t.Errorf("plana %s: stderr lacks %q:\n%s", strings.Join(tt.args, " "), tt.wantErr, e.ErrOut)
		}
	}
	if after, err := e.AdminClient().ListKeys(context.Background(), clientListAll()); err != nil || len(after) != len(before) {
		t.Errorf("%d keys after usage errors (err %v), want %d as before", len(after), err, len(before))
	}
}

// No command takes three stray arguments: a new command whose validator is
// cobra's, or missing, still exits 2. A command whose usage says it takes
// any number (KEY...) resolves each, and fails on the first unknown one.
func TestEveryCommandRefusesStrayArguments(t *testing.T) {
	e := cmdtest.New(t)
	var paths [][]string
	variadic := map[string]bool{}
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Runnable() && !c.Hidden {
			paths = append(paths, path)
			variadic[strings.Join(path, " ")] = strings.Contains(c.Use, "KEY...")
		}
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(root.NewCmdRoot(e.Factory), nil)
	if len(paths) < 20 {
		t.Fatalf("walked %d commands, want every one", len(paths))
	}
	for _, p := range paths {
		if variadic[strings.Join(p, " ")] {
			if code := run(e, append(p, "stray1", "stray2", "stray3")...); code != cmdutil.ExitFailure || !strings.Contains(e.ErrOut.String(), `no such key named "stray1"`) {
				t.Errorf("plana %s stray1 stray2 stray3: exit %d, want 1 for the unknown KEY; stderr:\n%s", strings.Join(p, " "), code, e.ErrOut)
			}
			continue
		}
		if code := run(e, append(p, "stray1", "stray2", "stray3")...); code != cmdutil.ExitUsage {
			t.Errorf("plana %s stray1 stray2 stray3: exit %d, want 2; stderr:\n%s", strings.Join(p, " "), code, e.ErrOut)
		}
	}
}

// cobra's flag groups and required flags, as a command may declare them.
func TestFlagGroupErrorsExit2(t *testing.T) {
	e := cmdtest.New(t)
	for _, args := range [][]string{{"grouped", "--a", "--b"}, {"grouped"}} {
		e.ErrOut.Reset()
		cmd := root.NewCmdRoot(e.Factory)
		e.BindFlags(cmd.PersistentFlags())
		g := &cobra.Command{Use: "grouped", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
		g.Flags().Bool("a", false, "")
		g.Flags().Bool("b", false, "")
		g.MarkFlagsMutuallyExclusive("a", "b")
		g.MarkFlagsOneRequired("a", "b")
		cmd.AddCommand(g)
		if code := root.Run(context.Background(), cmd, e.Factory, args); code != cmdutil.ExitUsage {
			t.Errorf("plana %s: exit %d, want 2; stderr:\n%s", strings.Join(args, " "), code, e.ErrOut)
		}
	}
}

// plana's requests name the machine in their User-Agent, so BOS's
// execution log shows which machine used which management key; config
// list and doctor show the name in force and where it came from.
func TestUserAgentNamesTheMachine(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	e.Setenv("PLANA_MACHINE_NAME", "build-7")
	if code := run(e, "keys", "list"); code != 0 {
		t.Fatalf("keys list: exit %d\n%s", code, e.ErrOut)
	}
	want := "plana/test (" + runtime.GOOS + "; build-7)"
	admin := client.PrefixOf(e.Seed.AdminToken)
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := e.AdminClient().ExecutionLog(context.Background(), client.ExecutionLogOptions{KeyPrefix: admin})
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		found := false
		for _, en := range entries {
			if en.Path == "/v1/api-keys" {
				seen = append(seen, en.UserAgent)
				found = found || en.UserAgent == want
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no GET /v1/api-keys with User-Agent %q in the execution log; saw %q", want, seen)
		}
		time.Sleep(20 * time.Millisecond) // polling the emulator's async log with a deadline
	}

	for _, args := range [][]string{{"config", "list"}, {"doctor"}} {
		if code := run(e, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, e.ErrOut)
		}
		if !regexp.MustCompile(`machine_name\s+(= )?build-7\s+\(?env PLANA_MACHINE_NAME`).MatchString(e.Out.String()) {
			t.Errorf("plana %s does not show machine_name build-7 from PLANA_MACHINE_NAME:\n%s", strings.Join(args, " "), e.Out)
		}
	}
}
