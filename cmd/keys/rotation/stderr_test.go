package rotation

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
)

// A failing exec target's stderr, and a failing notify hook's, are shown
// on the terminal only: redaction cannot catch a key printed base64-encoded
// (a failing kubectl ... -o yaml), so nothing they wrote reaches the
// journal, -o json or the hooks' events, which get the exit status and
// plana's own words.
func TestCommandStderrIsShownAndNeverStored(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	dir := t.TempDir()
	deploy := filepath.Join(dir, "deploy.sh")
	if err := os.WriteFile(deploy, []byte(`#!/bin/sh
read k
echo "kubectl: apply failed, secret data: $(printf %s "$k" | base64 | tr -d '\n')" >&2
echo "kubectl: the key was $k" >&2
exit 4
`), 0o700); err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events")
	hook := "exec:cat >> " + events + "; echo 'hook-stderr-marker' >&2; exit 9"
	err := e.Run(NewCmdRotate(e.Factory, nil), "Nightly stock sync (2025)", "--to", "exec:"+deploy, "--notify", hook, "--no-wait", "--yes", "-o", "json")
	if err == nil {
		t.Fatal("the failing deploy command passed")
	}
	var plain string
	for _, n := range e.Store.Names() {
		if strings.HasPrefix(n, "key:") {
			plain, _ = e.Store.Get(n)
		}
	}
	if plain == "" {
		t.Fatal("no new key in the keyring")
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(plain))
	secret := plain[len(client.PrefixOf(plain)):]

	stored := map[string]string{"-o json": e.Out.String(), "the error": err.Error()}
	if data, err := os.ReadFile(events); err == nil {
		stored["the hooks' events"] = string(data)
	} else {
		t.Fatalf("the hook heard nothing: %v", err)
	}
	filepath.Walk(e.Getenv("XDG_STATE_HOME"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			data, _ := os.ReadFile(p)
			stored[p] = string(data)
		}
		return nil
	})
	for where, text := range stored {
		for _, s := range []string{b64[:24], secret, "kubectl", "hook-stderr-marker"} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds what a command wrote to its stderr (%.12q…)", where, s)
			}
		}
	}
	if !strings.Contains(e.Out.String(), `"error": "deploy command`) || !strings.Contains(e.Out.String(), "exit status 4") {
		t.Errorf("-o json does not say the target failed and how:\n%s", e.Out)
	}
	term := e.ErrOut.String()
	for _, want := range []string{"| kubectl: the key was " + client.PrefixOf(plain) + "…", "| kubectl: apply failed", "hook-stderr-marker", "exit status 9"} {
		if !strings.Contains(term, want) {
			t.Errorf("the terminal was not shown %q:\n%s", want, term)
		}
	}
	if strings.Contains(term, secret) {
		t.Error("the terminal was shown the plain key")
	}
}
