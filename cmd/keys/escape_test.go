package keys

import (
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
)

// hostilePath is a request path a caller of BOS chose: as recorded by the
// emulator it clears the screen, turns the text red and forges a line.
const hostilePath = "/v1/%1b%5b2J%1b%5b31mPWNED%0aFAKE-LINE"

// assertEscaped fails when out obeys hostilePath instead of showing it.
func assertEscaped(t *testing.T, what, out string) {
	t.Helper()
	if strings.Contains(out, "\x1b") || strings.Contains(out, "\nFAKE-LINE") {
		t.Errorf("%s prints the path's escape codes raw:\n%q", what, out)
	}
	if !strings.Contains(out, `\x1b[2J\x1b[31mPWNED\x0aFAKE-LINE`) {
		t.Errorf("%s does not show the path escaped:\n%q", what, out)
	}
}

// keys show prints a path recorded by the real emulator with its control
// characters escaped, on a pipe and on a terminal; -o json keeps it whole.
func TestShowEscapesServerText(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	callAs(t, e, e.Seed.AutomationKey, "stock-sync/1.4", hostilePath)
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.Out.Reset()
		if err := e.Run(NewCmdShow(e.Factory, nil), "Nightly stock sync (2025)", "-o", "json"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(e.Out.String(), `\u001b[2J`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator never logged the call:\n%s", e.Out)
		}
		time.Sleep(20 * time.Millisecond) // polling the emulator's async log with a deadline
	}
	for _, tty := range []bool{false, true} {
		e.IO.SetStdoutTTY(tty)
		e.Out.Reset()
		if err := e.Run(NewCmdShow(e.Factory, nil), "Nightly stock sync (2025)"); err != nil {
			t.Fatal(err)
		}
		assertEscaped(t, "keys show", e.Out.String())
	}
}

// Names, emails and scopes are made safe the same way in keys list and show.
func TestKeyRecordClean(t *testing.T) {
	r := KeyRecord{Name: "sync\x1b]0;owned\x07", Prefix: "pa_live_\x1b[2J", Description: "a\nb", CreatedBy: Person{Email: "x\u202e@example.com"},
		RevokedBy: &Person{Email: "y\x1b@example.com"}, Scopes: []string{"stock:read\x1b"}}
	c := r.clean()
	for _, s := range []string{c.Name, c.Prefix, c.Description, c.CreatedBy.Email, c.RevokedBy.Email, c.Scopes[0]} {
		if strings.ContainsAny(s, "\x1b\x07\n\u202e") {
			t.Errorf("left raw: %q", s)
		}
	}
	if r.Name != "sync\x1b]0;owned\x07" || r.RevokedBy.Email != "y\x1b@example.com" || r.Scopes[0] != "stock:read\x1b" {
		t.Error("clean changed the record it was given (the JSON output keeps the values)")
	}
}
