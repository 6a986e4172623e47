// Package cmdtest runs plana commands in tests against a real in-process
// bos-emulator, a memory keyring and a private config directory.
package cmdtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/emulator/emutest"
	"github.com/plana-cli/plana/internal/iostreams"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/lineage"
)

// Env is one test's world.
type Env struct {
	T       testing.TB
	Emu     *emulator.Server
	URL     string
	Seed    emulator.SeedResult
	Store   *secret.Memory
	IO      *iostreams.IOStreams
	In      *bytes.Buffer
	Out     *bytes.Buffer
	ErrOut  *bytes.Buffer
	Factory *cmdutil.Factory
	flags   *pflag.FlagSet

	mu  sync.Mutex
	env map[string]string
}

// New starts a seeded emulator, logs the admin in (token in the memory
// store under profile "default") and gives the Factory an environment of
// its own: XDG dirs and HOME in the test's directory, PLANA_API_URL at the
// emulator, nothing else. The process environment is never read or
// changed, so tests using it can run in parallel.
func New(t testing.TB) *Env {
	t.Helper()
	emu, url := emutest.Start(t, emulator.Config{DevEndpoints: true})
	seed, err := emu.SeedDemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := secret.NewMemory()
	if err := cmdutil.SaveToken(store, "default", seed.AdminToken, url); err != nil {
		t.Fatal(err)
	}
	ios, in, out, errOut := iostreams.Test()
	e := &Env{T: t, Emu: emu, URL: url, Seed: seed, Store: store, IO: ios, In: in, Out: out, ErrOut: errOut,
		env: map[string]string{
			"XDG_CONFIG_HOME": filepath.Join(dir, "config"),
			"XDG_STATE_HOME":  filepath.Join(dir, "state"),
			"HOME":            dir,
			"PLANA_API_URL":   url,
		}}
	e.Factory = cmdutil.New(cmdutil.FactoryOptions{
		IOStreams:     ios,
		Flags:         func() *pflag.FlagSet { return e.flags },
		Version:       "test",
		Secrets:       func() (secret.Store, error) { return store, nil },
		Getenv:        e.Getenv,
		Now:           emu.Now,
		Executable:    "plana",
		ClientOptions: []client.Option{client.WithRetry(2, 2*time.Second), client.WithBackoff(10*time.Millisecond, 50*time.Millisecond)},
	})
	return e
}

// Setenv sets a variable of the Factory's environment; "" unsets it. The
// config is read once, at the first command that needs it.
func (e *Env) Setenv(key, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.env[key] = value
}

// Getenv reads the Factory's environment.
func (e *Env) Getenv(key string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.env[key]
}

// BindFlags makes the Factory's config read the root's persistent flags
// (--profile, --api-url), as cmd/root.Main does.
func (e *Env) BindFlags(fs *pflag.FlagSet) { e.flags = fs }

// AdminClient is a client presenting the seeded admin's management key.
func (e *Env) AdminClient() *client.Client {
	e.T.Helper()
	c, err := client.New(e.URL, client.WithKeys(e.Seed.AdminToken))
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// MintOwn makes a stock:read key named name, issued by the seeded admin,
// and returns its plaintext and the key.
func (e *Env) MintOwn(name string) (string, client.APIKey) {
	e.T.Helper()
	ctx := context.Background()
	me, err := e.AdminClient().Me(ctx)
	if err != nil {
		e.T.Fatal(err)
	}
	pt, k, err := e.Emu.MintKey(ctx, me.User.ID, name, []string{"stock:read"}, time.Time{})
	if err != nil {
		e.T.Fatal(err)
	}
	return pt, k
}

// SeedSuccessor is the seeded automation key and a successor of it that
// ana@example.com created with its lineage, as a rotation does.
func (e *Env) SeedSuccessor() (old *client.APIKey, created *client.CreatedKey) {
	e.T.Helper()
	ctx := context.Background()
	admin := e.AdminClient()
	old, err := cmdutil.ResolveKey(ctx, admin, client.PrefixOf(e.Seed.AutomationKey))
	if err != nil {
		e.T.Fatal(err)
	}
	desc := lineage.Claim{OldPrefix: old.Prefix, OldName: old.Name, By: "ana@example.com", On: e.Emu.Now(), Reason: "scheduled"}.Description()
	created, err = admin.CreateKey(ctx, client.CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: old.Scopes, Description: desc}, client.NewIdempotencyKey())
	if err != nil {
		e.T.Fatal(err)
	}
	return old, created
}

// AutomationEnvFile is a new env file holding the seeded automation key as
// PLANA_KEY, as a deployed app's would: a rotation's env-file target.
func (e *Env) AutomationEnvFile() string {
	e.T.Helper()
	path := filepath.Join(e.T.TempDir(), "sync.env")
	if err := os.WriteFile(path, []byte("PLANA_KEY="+e.Seed.AutomationKey+"\n"), 0o600); err != nil {
		e.T.Fatal(err)
	}
	return path
}

// Run executes cmd with args, output captured in the Env's buffers.
func (e *Env) Run(cmd *cobra.Command, args ...string) error {
	e.T.Helper()
	cmd.SetArgs(args)
	cmd.SetIn(e.In)
	cmd.SetOut(e.Out)
	cmd.SetErr(e.ErrOut)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	_, err := cmd.ExecuteC()
	return err
}

// Secrets are the plaintexts a test world holds, for leak checks.
func (e *Env) Secrets() []string {
	return []string{e.Seed.AdminToken, e.Seed.AutomationKey}
}

// AssertNoSecrets fails if any of secrets appears in the captured output.
func (e *Env) AssertNoSecrets(secrets ...string) {
	e.T.Helper()
	for _, s := range append(secrets, e.Secrets()...) {
		if s == "" {
			continue
		}
		for name, buf := range map[string]*bytes.Buffer{"stdout": e.Out, "stderr": e.ErrOut} {
			if strings.Contains(buf.String(), s) {
				e.T.Errorf("a plaintext key (prefix %s) appeared on %s", client.PrefixOf(s), name)
			}
		}
	}
}
