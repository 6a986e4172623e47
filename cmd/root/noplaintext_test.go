package root_test

import (
	"context"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/internal/secret"
)

// TestNoCommandPrintsAPlaintext runs every read-only command, in every
// output format and on the error paths that see a key, with plaintexts in
// the keyring, and checks none reaches stdout or stderr. `keys secret`,
// whose job is to print one, is the only exception.
func TestNoCommandPrintsAPlaintext(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	ctx := context.Background()
	keys, err := e.AdminClient().ListKeys(ctx, clientListAll())
	if err != nil {
		t.Fatal(err)
	}
	var automationID string
	for _, k := range keys {
		if k.Name == "Nightly stock sync (2025)" {
			automationID = k.ID
		}
	}
	if err := e.Store.Set(secret.KeyName(automationID), e.Seed.AutomationKey); err != nil {
		t.Fatal(err)
	}
	runs := [][]string{
		{"auth", "status"}, {"auth", "status", "-o", "json"}, {"auth", "status", "-o", "yaml"},
		{"keys", "list"}, {"keys", "list", "--status", "all", "-o", "json"}, {"keys", "list", "-o", "yaml"}, {"keys", "list", "-o", "csv"},
		{"keys", "show", "Nightly stock sync (2025)"}, {"keys", "show", automationID, "-o", "json"},
		{"keys", "show", e.Seed.AutomationKey},
		{"auth", "login", e.Seed.AdminToken},
		{"config", "list"}, {"config", "list", "-o", "yaml"},
		{"doctor"}, {"doctor", "-o", "json"},
		{"version", "-o", "json"},
		{"keys", "secret", "Nightly stock sync (2025)"}, // stdout is a terminal here: refused
	}
	for _, args := range runs {
		e.IO.SetStdoutTTY(len(args) > 1 && args[1] == "secret")
		code := run(e, args...)
		redacted := strings.Join(args, " ")
		redacted = strings.ReplaceAll(redacted, e.Seed.AutomationKey, "<automation key>")
		redacted = strings.ReplaceAll(redacted, e.Seed.AdminToken, "<admin token>")
		t.Logf("plana %s: exit %d", redacted, code)
		e.AssertNoSecrets()
	}
	e.IO.SetStdoutTTY(true)
	e.IO.SetStderrTTY(true)
	e.IO.SetStdinTTY(true)
	e.In.WriteString(e.Seed.AdminToken + "\n")
	if code := run(e, "auth", "login"); code != 0 {
		t.Fatalf("interactive login: exit %d\n%s", code, e.ErrOut)
	}
	e.AssertNoSecrets()
}

func clientListAll() client.ListKeysOptions { return client.ListKeysOptions{Status: client.StatusAll} }
