package rotation_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/cmd/root"
)

// The gate's "still used from" line shows a path a caller chose, recorded
// by the real emulator, escaped: it cannot clear the screen or forge a line.
func TestGateLineEscapesServerText(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	c, err := client.New(e.URL, client.WithKeys(e.Seed.AutomationKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), client.Request{Method: http.MethodGet, Path: hostilePath}, nil); err != nil {
		t.Fatal(err)
	}
	env := e.AutomationEnvFile()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code := run(e, "keys", "rotate", oldName, "--to", "env-file:"+env, "--quiet-period", "1h", "--no-wait")
		if code != cmdutil.ExitPending {
			t.Fatalf("exit %d, want 3:\n%s", code, e.ErrOut)
		}
		if strings.Contains(e.ErrOut.String(), "PWNED") || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the emulator's async log with a deadline
	}
	out := e.ErrOut.String()
	if strings.Contains(out, "\x1b") || strings.Contains(out, "\nFAKE-LINE") {
		t.Errorf("the gate's lines print the path's escape codes raw:\n%q", out)
	}
	if !strings.Contains(out, `still used from: `) || !strings.Contains(out, `\x1b[2J\x1b[31mPWNED\x0aFAKE-LINE`) {
		t.Errorf("the gate's lines do not show the path escaped:\n%q", out)
	}
}

// Text others chose, as BOS hands it back: a caller's user agent (C1
// controls, a right-to-left override, a tab; JSON cannot carry a byte that
// is not UTF-8) and
// request path (escape codes, a newline), a member's email (escape codes),
// and a key's name and description (bidirectional controls; a newline and
// a tab, which BOS allows in a description).
const (
	hostileUA    = "evil\u009b[31m\u202e\tbot/1.0 \u0085[2J"
	hostilePath  = "/v1/%1b%5b2J%1b%5b31mPWNED%0aFAKE-LINE"
	hostileEmail = "mallory\x1b[2J\u202e\u009b@example.com"
	hostileName  = "Evil \u202eelif\u2066 sync (2025)"
	hostileDesc  = "about\nFAKE-LINE\tcolumn \u202eevil"
	mgmtName     = "Mallory \u202etoken"
)

// assertSafe fails when out holds anything that acts on a terminal: a
// control character (but the newlines and table tabs plana writes itself,
// and the spinner's own "\r\x1b[K"), a bidirectional control, a line
// separator or a byte that is not UTF-8; or the hostile texts' own tab and
// newline, which would forge a column or a line.
func assertSafe(t *testing.T, what, out string) {
	t.Helper()
	s := strings.ReplaceAll(out, "\r\x1b[K", "")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || (unicode.IsControl(r) && r != '\n' && r != '\t') ||
			unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' {
			t.Errorf("%s prints %q raw, in %q", what, s[i:i+n], s[max(0, i-40):min(len(s), i+40)])
			return
		}
		i += n
	}
	for _, raw := range []string{"\tbot/1.0", "\nFAKE-LINE", "\tcolumn"} {
		if strings.Contains(s, raw) {
			t.Errorf("%s prints %q raw:\n%s", what, raw, s)
		}
	}
}

// Every command that prints what BOS returns shows hostile text escaped,
// on a pipe and on a terminal: lists, tables, plain lines, the rotation's
// progress and wait lines, the watch, doctor and auth status.
func TestEveryCommandEscapesServerText(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	ctx := context.Background()
	mallory, err := e.Emu.CreateUser(ctx, hostileEmail, "member", []string{client.ScopeManage, "stock:read"})
	if err != nil {
		t.Fatal(err)
	}
	mgmt, _, err := e.Emu.MintKey(ctx, mallory.ID, mgmtName, []string{client.ScopeManage, "stock:read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := client.New(e.URL, client.WithKeys(mgmt))
	if err != nil {
		t.Fatal(err)
	}
	// plana runs as the member: her email is the actor of what it does.
	e.Setenv("PLANA_TOKEN", mgmt)
	created, err := mc.CreateKey(ctx, client.CreateKeyRequest{Name: hostileName, Description: hostileDesc, Scopes: []string{"stock:read"}}, "escape-test")
	if err != nil {
		t.Fatal(err)
	}
	// A forged claim to replace the admin's key, in the member's words: shown
	// as a claimant by keys status and keys show.
	nightly, err := cmdutil.ResolveKey(ctx, e.AdminClient(), "Nightly stock sync (2025)")
	if err != nil {
		t.Fatal(err)
	}
	forged := "Rotation of " + nightly.Prefix + " (Nightly stock sync (2025)) by eve\u202e\u2066@example.com on 2026-12-04 on h: \u202eevil"
	if _, err := mc.CreateKey(ctx, client.CreateKeyRequest{Name: hostileName + " (2026)", Description: forged, Scopes: []string{"stock:read"}}, "escape-claim"); err != nil {
		t.Fatal(err)
	}
	call := func() {
		t.Helper()
		c, err := client.New(e.URL, client.WithKeys(created.Plaintext), client.WithUserAgent(hostileUA), client.WithRetry(1, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Do(ctx, client.Request{Method: http.MethodGet, Path: hostilePath}, nil)
	}
	// logged waits until the execution log holds n calls of the key with
	// status (the emulator writes it asynchronously).
	logged := func(status, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			entries, err := e.AdminClient().ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: created.APIKey.ID})
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, en := range entries {
				if en.Status == status && en.UserAgent == hostileUA {
					seen++
				}
			}
			if seen >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the emulator logged %d calls with status %d, want %d", seen, status, n)
			}
			time.Sleep(20 * time.Millisecond) // polling the emulator's async log with a deadline
		}
	}
	call()
	call()
	logged(http.StatusOK, 2)

	// each runs plana ARGS on a pipe and on a terminal and checks both
	// streams; want is the exit code.
	each := func(want int, args ...string) {
		t.Helper()
		for _, tty := range []bool{false, true} {
			e.IO.SetStdoutTTY(tty)
			e.IO.SetStderrTTY(tty)
			code := run(e, args...)
			what := fmt.Sprintf("plana %s (terminal: %v)", strings.Join(args, " "), tty)
			if code != want {
				t.Errorf("%s: exit %d, want %d\n%s%s", what, code, want, e.Out, e.ErrOut)
			}
			assertSafe(t, what+" stdout", e.Out.String())
			assertSafe(t, what+" stderr", e.ErrOut.String())
			// Each command shows some of the hostile text (a name, an
			// email), escaped: the check above saw it.
			if !strings.Contains(e.Out.String()+e.ErrOut.String(), `\u202e`) {
				t.Errorf("%s shows none of the hostile text:\n%s%s", what, e.Out, e.ErrOut)
			}
		}
	}
	each(0, "keys", "list")
	each(0, "keys", "show", created.APIKey.Prefix)
	each(0, "keys", "show", nightly.Prefix)
	each(5, "keys", "due", "--within", "1000d")

	env := filepath.Join(t.TempDir(), "evil.env")
	if err := os.WriteFile(env, []byte("PLANA_KEY="+created.Plaintext+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	each(3, "keys", "rotate", created.APIKey.Prefix, "--to", "env-file:"+env, "--quiet-period", "1h", "--no-wait", "--yes")
	each(3, "keys", "verify", created.APIKey.Prefix, "--quiet-period", "1h")
	each(0, "keys", "status")
	each(0, "keys", "show", created.APIKey.Prefix)
	each(0, "keys", "log")

	// Revoked behind plana's back, the key is still called: its refused
	// calls show in status, show and watch.
	if _, err := e.AdminClient().RevokeKey(ctx, created.APIKey.ID); err != nil {
		t.Fatal(err)
	}
	call()
	logged(http.StatusUnauthorized, 1)
	each(0, "keys", "status")
	each(0, "keys", "show", created.APIKey.Prefix)
	watchCtx, stop := context.WithTimeout(ctx, 1500*time.Millisecond) // watch runs until Ctrl-C
	defer stop()
	e.Out.Reset()
	e.ErrOut.Reset()
	cmd := root.NewCmdRoot(e.Factory)
	e.BindFlags(cmd.PersistentFlags())
	root.Run(watchCtx, cmd, e.Factory, []string{"keys", "watch", created.APIKey.Prefix})
	if !strings.Contains(e.Out.String(), "401") {
		t.Errorf("keys watch printed no refused call:\n%s%s", e.Out, e.ErrOut)
	}
	assertSafe(t, "plana keys watch stdout", e.Out.String())
	assertSafe(t, "plana keys watch stderr", e.ErrOut.String())

	// An error that names a key: it is already revoked.
	_, gone, err := e.Emu.MintKey(ctx, mallory.ID, "Gone \u202eevil", []string{"stock:read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.AdminClient().RevokeKey(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	each(1, "keys", "rotate", gone.Prefix, "--to", "env-file:"+env, "--no-wait", "--yes")
	if !strings.Contains(e.ErrOut.String(), `Gone \u202eevil`) {
		t.Errorf("the error does not name the key escaped:\n%s", e.ErrOut)
	}

	// Her email and her key's name, where plana says whom it acts as.
	each(0, "auth", "status")
	each(0, "doctor")
}
