package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/internal/secret"
)

func TestNewCmdLoginFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		tty       bool
		wantErr   string
		withToken bool
	}{
		{name: "prompt on a TTY", tty: true},
		{name: "stdin", args: []string{"--with-token"}, withToken: true},
		{name: "no TTY needs --with-token", wantErr: "--with-token required when not running interactively"},
		{name: "key as argument refused", args: []string{"pa_live_AB7K2XYZ"}, tty: true, wantErr: "Pipe it on stdin"},
		{name: "other argument refused", args: []string{"hello"}, tty: true, wantErr: "takes no arguments"},
		{name: "no --token flag", args: []string{"--token", "x"}, tty: true, wantErr: "unknown flag: --token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := cmdtest.New(t)
			e.IO.SetStdinTTY(tt.tty)
			e.IO.SetStderrTTY(tt.tty)
			var got *LoginOptions
			cmd := NewCmdLogin(e.Factory, func(_ context.Context, o *LoginOptions) error { got = o; return nil })
			err := e.Run(cmd, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				var fe *cmdutil.FlagError
				if !errors.As(err, &fe) && !strings.Contains(err.Error(), "unknown flag") {
					t.Errorf("want a usage error, got %T", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.WithToken != tt.withToken {
				t.Errorf("WithToken = %v", got.WithToken)
			}
		})
	}
}

func TestLoginRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		input     func(e *cmdtest.Env) string
		tty       bool
		setup     func(e *cmdtest.Env)
		wantErr   string
		wantCode  int
		wantStore bool
	}{
		{name: "stdin", input: func(e *cmdtest.Env) string { return e.Seed.AdminToken + "\n" }, wantStore: true},
		{name: "hidden prompt", tty: true, input: func(e *cmdtest.Env) string { return e.Seed.AdminToken + "\n" }, wantStore: true},
		{name: "malformed", input: func(*cmdtest.Env) string { return "pa_live_nope\n" }, wantErr: "not a BOS API key"},
		{name: "empty", input: func(*cmdtest.Env) string { return "\n" }, wantErr: "no key given"},
		{name: "lacks keys:manage", input: func(e *cmdtest.Env) string { return e.Seed.AutomationKey }, wantErr: "lacks the scope keys:manage"},
		{name: "revoked", input: func(e *cmdtest.Env) string {
			ctx := context.Background()
			me, _ := e.AdminClient().Me(ctx)
			pt, k, err := e.Emu.MintKey(ctx, me.User.ID, "spare admin", []string{"keys:manage"}, time.Time{})
			if err != nil {
				e.T.Fatal(err)
			}
			if _, err := e.AdminClient().RevokeKey(ctx, k.ID); err != nil {
				e.T.Fatal(err)
			}
			return pt
		}, wantErr: "refused", wantCode: cmdutil.ExitAuth},
		{name: "no keyring", input: func(e *cmdtest.Env) string { return e.Seed.AdminToken },
			setup: func(e *cmdtest.Env) { e.Store.SetErr = secret.ErrUnavailable }, wantErr: "PLANA_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := cmdtest.New(t)
			_ = e.Store.Delete(secret.TokenName("default"))
			if tt.setup != nil {
				tt.setup(e)
			}
			input := tt.input(e)
			e.In.WriteString(input)
			args := []string{"--with-token"}
			if tt.tty {
				e.IO.SetStdinTTY(true)
				e.IO.SetStderrTTY(true)
				args = nil
			}
			err := e.Run(NewCmdLogin(e.Factory, nil), args...)
			e.AssertNoSecrets(strings.TrimSpace(input))
			stored, _ := e.Store.Get(secret.TokenName("default"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), strings.TrimSpace(input)) && len(input) > 20 {
					t.Error("the error repeats the key")
				}
				var xe *cmdutil.ExitError
				if tt.wantCode != 0 && (!errors.As(err, &xe) || xe.Code != tt.wantCode) {
					t.Errorf("want exit code %d, got %v", tt.wantCode, err)
				}
				if stored != "" {
					t.Error("a rejected key was stored")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if stored != e.Seed.AdminToken {
				t.Error("the key was not stored under token:default")
			}
			for _, w := range []string{"ana@example.com", "admin", client.PrefixOf(e.Seed.AdminToken), "for use with " + e.URL + " only"} {
				if !strings.Contains(e.ErrOut.String(), w) {
					t.Errorf("confirmation lacks %q: %s", w, e.ErrOut)
				}
			}
		})
	}
}

func TestStatusRun(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	if err := e.Run(NewCmdStatus(e.Factory, nil), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(e.Out.Bytes(), &st); err != nil {
		t.Fatalf("invalid JSON %q: %v", e.Out, err)
	}
	if st.User.Email != "ana@example.com" || st.TokenSource != "keyring" || st.TokenPrefix != client.PrefixOf(e.Seed.AdminToken) || st.Profile != "default" {
		t.Errorf("status = %+v", st)
	}
	e.AssertNoSecrets()

	e.Out.Reset()
	e.Setenv("PLANA_TOKEN", e.Seed.AdminToken)
	if err := e.Run(NewCmdStatus(e.Factory, nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Out.String(), "from PLANA_TOKEN") {
		t.Errorf("status does not name PLANA_TOKEN as the source:\n%s", e.Out)
	}
	e.AssertNoSecrets()

	e.Setenv("PLANA_TOKEN", "")
	_ = e.Store.Delete(secret.TokenName("default"))
	err := e.Run(NewCmdStatus(e.Factory, nil))
	var ae *cmdutil.AuthError
	if !errors.As(err, &ae) {
		t.Errorf("not logged in: err = %v, want an AuthError (exit 4)", err)
	}
}

func TestLogoutRun(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	if err := e.Run(NewCmdLogout(e.Factory, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Get(secret.TokenName("default")); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("token still stored: %v", err)
	}
	if names := e.Store.Names(); len(names) != 0 {
		t.Errorf("entries left in the keyring: %v", names)
	}
	if !strings.Contains(e.ErrOut.String(), client.PrefixOf(e.Seed.AdminToken)) || !strings.Contains(e.ErrOut.String(), "still valid in BOS") {
		t.Errorf("logout message: %s", e.ErrOut)
	}
	e.AssertNoSecrets()
	if err := e.Run(NewCmdLogout(e.Factory, nil)); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Errorf("second logout: %v", err)
	}
}

// Something other than BOS answering 200 at the API URL (a catch-all, a
// proxy's page) is not a login.
func TestStatusRefusesAnAnswerThatIsNotBOS(t *testing.T) {
	e := cmdtest.New(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok": true, "method": %q, "path": %q}`, r.Method, r.URL.Path)
	}))
	t.Cleanup(other.Close)
	e.Setenv("PLANA_API_URL", other.URL)
	e.Setenv("PLANA_TOKEN", e.Seed.AdminToken)
	err := e.Run(NewCmdStatus(e.Factory, nil))
	if !errors.Is(err, client.ErrNotBOS) || !strings.Contains(err.Error(), "base URL") {
		t.Fatalf("err = %v, want ErrNotBOS naming the base URL", err)
	}
	if strings.Contains(e.Out.String(), "Logged in") {
		t.Errorf("status claims a login:\n%s", e.Out)
	}
	e.AssertNoSecrets()
}

// Login binds the token to the API it was checked with; a login for another
// API moves the binding there.
func TestLoginBindsTheTokenToItsOrigin(t *testing.T) {
	e := cmdtest.New(t)
	e.In.WriteString(e.Seed.AdminToken)
	if err := e.Run(NewCmdLogin(e.Factory, nil), "--with-token"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Factory.Token(); err != nil {
		t.Fatalf("the token for the API it was stored for: %v", err)
	}
	// The same emulator under another name is another origin.
	other := strings.Replace(e.URL, "127.0.0.1", "localhost", 1)
	e.Setenv("PLANA_API_URL", other)
	e.Factory = freshFactory(e)
	_, err := e.Factory.Token()
	var ae *cmdutil.AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "was saved for "+e.URL) {
		t.Fatalf("token for %s: err = %v, want an AuthError naming %s", other, err, e.URL)
	}
	e.In.WriteString(e.Seed.AdminToken)
	if err := e.Run(NewCmdLogin(e.Factory, nil), "--with-token"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Factory.Token(); err != nil {
		t.Errorf("after auth login for %s: %v", other, err)
	}
	e.Setenv("PLANA_API_URL", e.URL)
	e.Factory = freshFactory(e)
	if _, err := e.Factory.Token(); !errors.As(err, &ae) {
		t.Errorf("the first API after the login moved the token: err = %v, want an AuthError", err)
	}
	e.AssertNoSecrets()
}

// freshFactory is e's Factory with nothing cached, so the config is read again.
func freshFactory(e *cmdtest.Env) *cmdutil.Factory {
	return cmdutil.New(cmdutil.FactoryOptions{IOStreams: e.IO, Version: "test", Getenv: e.Getenv,
		Secrets: func() (secret.Store, error) { return e.Store, nil }})
}
