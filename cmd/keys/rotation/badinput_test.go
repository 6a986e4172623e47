package rotation_test

// Bad input at the CLI (issue 5, scenario 8), through the whole command tree
// and its exit-code mapping, against an in-process emulator.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/cmd/root"
	"github.com/plana-cli/plana/internal/asnobody"
	"github.com/plana-cli/plana/internal/secret"
)

const oldName = "Nightly stock sync (2025)"

// run executes plana ARGS through root.Run and returns the exit code.
func run(e *cmdtest.Env, args ...string) int {
	e.Out.Reset()
	e.ErrOut.Reset()
	cmd := root.NewCmdRoot(e.Factory)
	e.BindFlags(cmd.PersistentFlags())
	return root.Run(context.Background(), cmd, e.Factory, args)
}

func keyCount(t *testing.T, e *cmdtest.Env) int {
	t.Helper()
	ks, err := e.AdminClient().ListKeys(context.Background(), client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(ks)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	type setup struct {
		env string // an env file holding the automation's key
		dir string
	}
	tests := []struct {
		name string
		// args builds the command line; s.env is a fresh env file.
		args     func(t *testing.T, e *cmdtest.Env, s *setup) []string
		stdin    string
		wantCode int
		want     []string // in stderr
		// created is how many keys the command may create: 0 for input
		// that is refused before step 1.
		created int
		after   func(t *testing.T, e *cmdtest.Env, s *setup)
		// asNobody: root writes any file, so the case runs as nobody.
		asNobody bool
		// tty: stdout is a terminal.
		tty bool
	}{
		{name: "key as a flag value",
			args: func(_ *testing.T, e *cmdtest.Env, _ *setup) []string {
				return []string{"keys", "rotate", oldName, "--no-wait", "--emergency", e.Seed.AutomationKey}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"the value of --emergency holds a key plaintext (pa_live_", "…): plana never takes a secret on the command line", "rotate it", "stdin"}},
		{name: "key as --flag=value",
			args: func(_ *testing.T, e *cmdtest.Env, _ *setup) []string {
				return []string{"auth", "login", "--token=" + e.Seed.AdminToken}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"the value of --token holds a key plaintext", "plana auth login --with-token"}},
		{name: "key where a duration goes",
			args: func(_ *testing.T, e *cmdtest.Env, _ *setup) []string {
				return []string{"keys", "verify", oldName, "--quiet-period", e.Seed.AutomationKey}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"the value of --quiet-period holds a key plaintext"}},
		{name: "key as the KEY argument",
			args: func(_ *testing.T, e *cmdtest.Env, _ *setup) []string {
				return []string{"keys", "rotate", e.Seed.AutomationKey, "--no-wait"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"argument 3 holds a key plaintext"}},
		{name: "key inside a deploy command",
			args: func(_ *testing.T, e *cmdtest.Env, _ *setup) []string {
				return []string{"keys", "rotate", oldName, "--no-wait", "--to", "exec:vault put k=" + e.Seed.AutomationKey}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"the value of --to holds a key plaintext"}},
		{name: "empty stdin for login --with-token",
			args: func(*testing.T, *cmdtest.Env, *setup) []string { return []string{"auth", "login", "--with-token"} },
			// Nothing on stdin at all, not even a newline.
			wantCode: cmdutil.ExitFailure, want: []string{"no key given"}},
		{name: "login without a TTY or --with-token",
			args:     func(*testing.T, *cmdtest.Env, *setup) []string { return []string{"auth", "login"} },
			wantCode: cmdutil.ExitUsage, want: []string{"--with-token required when not running interactively"}},
		{name: "unknown key name",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", "Nightly stock sync", "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, want: []string{`no such key named "Nightly stock sync"`, "plana keys list --status all"}},
		{name: "unknown key id",
			args:     func(*testing.T, *cmdtest.Env, *setup) []string { return []string{"keys", "verify", "key_doesnotexist"} },
			wantCode: cmdutil.ExitFailure, want: []string{"no such key: key_doesnotexist", "plana keys list --status all"}},
		{name: "unknown key prefix",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "revoke", "pa_live_ZZZZZZZZ", "--yes"}
			},
			wantCode: cmdutil.ExitFailure, want: []string{`no such key with prefix "pa_live_ZZZZZZZZ"`}},
		{name: "id that walks out of the API path",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", "key_../../v1/me", "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, want: []string{"no such key"}},
		{name: "malformed duration",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--quiet-period", "5x"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{`invalid argument "5x" for "--quiet-period"`}},
		{name: "negative duration",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--quiet-period", "-1h"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"--quiet-period", "must be positive"}},
		{name: "zero timeout",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "verify", oldName, "--wait", "--timeout", "0"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"--timeout", "must be positive"}},
		{name: "zero poll interval",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--poll-interval", "0s"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"--poll-interval", "must be positive"}},
		{name: "env file that is a symlink",
			args: func(t *testing.T, _ *cmdtest.Env, s *setup) []string {
				link := filepath.Join(s.dir, "link.env")
				if err := os.Symlink(s.env, link); err != nil {
					t.Fatal(err)
				}
				return []string{"keys", "rotate", oldName, "--to", "env-file:" + link, "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, want: []string{"is a symlink (to ", "pass the real file: --to env-file:"},
			after: func(t *testing.T, _ *cmdtest.Env, s *setup) {
				if fi, err := os.Lstat(filepath.Join(s.dir, "link.env")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Error("the symlink was replaced")
				}
			}},
		{name: "env file that does not exist",
			args: func(t *testing.T, _ *cmdtest.Env, s *setup) []string {
				return []string{"keys", "rotate", oldName, "--to", "env-file:" + filepath.Join(s.dir, "nope.env"), "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, want: []string{"nope.env does not exist: create it"}},
		{name: "env file that is a directory",
			args: func(t *testing.T, _ *cmdtest.Env, s *setup) []string {
				return []string{"keys", "rotate", oldName, "--to", "env-file:" + s.dir, "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, want: []string{"is not a regular file"}},
		{name: "env file that is not writable",
			asNobody: true,
			args: func(t *testing.T, _ *cmdtest.Env, s *setup) []string {
				if err := os.Chmod(s.env, 0o400); err != nil {
					t.Fatal(err)
				}
				return []string{"keys", "rotate", oldName, "--to", "env-file:" + s.env, "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, want: []string{"is not writable", "fix its permissions"}},
		{name: "exec target that fails",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--to", "exec:echo vault is sealed >&2; exit 3", "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, created: 1,
			want: []string{"failed (exit status 3)", "| vault is sealed", "is safe in the keyring and not deployed yet", "run the same command again"},
			after: func(_ *testing.T, e *cmdtest.Env, _ *setup) {
				// The key created before the deploy failed is kept, whole.
				ks, _ := e.AdminClient().ListKeys(context.Background(), client.ListKeysOptions{})
				var found bool
				for _, k := range ks {
					if strings.HasPrefix(k.Name, "Nightly stock sync (20") && k.Name != oldName {
						p, err := e.Store.Get(secret.KeyName(k.ID))
						found = err == nil && client.PrefixOf(p) == k.Prefix
					}
				}
				if !found {
					t.Error("the new key is not in the keyring after a failed deploy")
				}
			}},
		{name: "exec target past --exec-timeout",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--to", "exec:exec sleep 30", "--exec-timeout", "200ms", "--no-wait"}
			},
			wantCode: cmdutil.ExitFailure, created: 1, want: []string{"timed out after 200ms", "is safe in the keyring and not deployed yet"}},
		{name: "--to stdout on a terminal", tty: true,
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--to", "stdout", "--no-wait"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"refusing to print the new key to a terminal", "--force-tty"}},
		{name: "deploy --to stdout on a terminal", tty: true,
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "deploy", oldName, "--to", "stdout"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"refusing to print the new key to a terminal"}},
		{name: "--print-secret with -o json on a pipe",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--print-secret", "-o", "json", "--no-wait"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"--print-secret cannot be combined with -o json"}},
		{name: "--issued-by with one env file",
			args: func(_ *testing.T, _ *cmdtest.Env, s *setup) []string {
				return []string{"keys", "rotate", "--issued-by", "ben@example.com", "--emergency", "departed", "--to", "env-file:" + s.env, "--no-wait"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"every successor would overwrite the last", "rotation.targets"}},
		{name: "--stored-on without --emergency",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", "--stored-on", "ana-laptop", "--no-wait"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"--stored-on revokes each old key at once: add --emergency lost-device", "--dry-run"}},
		{name: "--stored-on a name no machine has",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", "--stored-on", "ana laptop;", "--emergency", "lost-device"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"--stored-on: machine name", "letters, digits"}},
		{name: "--stored-on with a KEY",
			args: func(*testing.T, *cmdtest.Env, *setup) []string {
				return []string{"keys", "rotate", oldName, "--stored-on", "ana-laptop", "--emergency", "lost-device"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"pass one of KEY, --issued-by, --stored-on or --due"}},
		{name: "a name whose successor's is too long",
			args: func(t *testing.T, e *cmdtest.Env, _ *setup) []string {
				ck, err := e.AdminClient().CreateKey(context.Background(),
					client.CreateKeyRequest{Name: strings.Repeat("n", 196), Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
				if err != nil {
					t.Fatal(err)
				}
				return []string{"keys", "rotate", ck.APIKey.Prefix, "--no-wait"}
			},
			wantCode: cmdutil.ExitUsage, want: []string{"BOS allows at most 200", "Rename"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.asNobody && asnobody.Rerun(t) {
				return
			}
			e := cmdtest.New(t)
			e.IO.SetStdoutTTY(tt.tty)
			s := &setup{dir: t.TempDir()}
			s.env = filepath.Join(s.dir, "sync.env")
			if err := os.WriteFile(s.env, []byte("PLANA_KEY="+e.Seed.AutomationKey+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := tt.args(t, e, s)
			e.In.WriteString(tt.stdin)
			before := keyCount(t, e)
			code := run(e, args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, e.ErrOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(e.ErrOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, e.ErrOut)
				}
			}
			if n := keyCount(t, e) - before; n != tt.created {
				t.Errorf("%d keys created, want %d", n, tt.created)
			}
			var created []string
			for _, name := range e.Store.Names() {
				if v, err := e.Store.Get(name); err == nil {
					created = append(created, v)
				}
			}
			e.AssertNoSecrets(created...)
			if tt.after != nil {
				tt.after(t, e, s)
			}
		})
	}
}

// Without a TTY, a step that needs a human's yes refuses with exit 2 and
// names --yes; nothing is revoked.
func TestNoTTYNeedsYes(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	envFile := e.AutomationEnvFile()
	if code := run(e, "keys", "rotate", oldName, "--to", "env-file:"+envFile, "--quiet-period", "1h", "--no-wait"); code != cmdutil.ExitPending {
		t.Fatalf("exit %d, want 3:\n%s", code, e.ErrOut)
	}
	data, _ := os.ReadFile(envFile)
	newPlain := ""
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PLANA_KEY_NEW="); ok {
			newPlain = v
		}
	}
	c, err := e.Factory.ClientFor(newPlain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), client.Request{Method: "GET", Path: "/v1/stock-levels"}, nil); err != nil {
		t.Fatal(err)
	}
	e.Emu.Advance(2 * time.Hour) // the gate holds: only a human's yes is missing
	for _, args := range [][]string{
		{"keys", "revoke", oldName},
		{"keys", "rotate", oldName},
	} {
		code := run(e, args...)
		if code != cmdutil.ExitUsage || !strings.Contains(e.ErrOut.String(), "--yes required when not running interactively") {
			t.Errorf("plana %s without a TTY: exit %d, want 2 naming --yes:\n%s", strings.Join(args, " "), code, e.ErrOut)
		}
	}
	ks, _ := e.AdminClient().ListKeys(context.Background(), client.ListKeysOptions{Status: client.StatusRevoked})
	for _, k := range ks {
		if k.Name == oldName {
			t.Fatal("the old key was revoked without a yes")
		}
	}
	if code := run(e, "keys", "revoke", oldName, "--yes"); code != cmdutil.ExitOK {
		t.Fatalf("revoke --yes: exit %d:\n%s", code, e.ErrOut)
	}
	e.AssertNoSecrets(newPlain)
}
