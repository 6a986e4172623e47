package rotation_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
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
	if _, err := c.Do(context.Background(), client.Request{Method: http.MethodGet, Path: "/v1/%1b%5b2J%1b%5b31mPWNED%0aFAKE-LINE"}, nil); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(t.TempDir(), "sync.env")
	if err := os.WriteFile(env, []byte("PLANA_KEY="+e.Seed.AutomationKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
