package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/emulator/emutest"
)

// A base URL ending in /v1 sends GET /v1/v1/me, which the emulator's
// catch-all for the automation's own calls answers 200 {"ok": true}: Me
// must not take that for a login.
func TestMeRefusesAnAnswerThatIsNotBOS(t *testing.T) {
	emu, url := emutest.Start(t, emulator.Config{})
	seed, err := emu.SeedDemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	good, err := client.New(url, client.WithKeys(seed.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	me, err := good.Me(context.Background())
	if err != nil {
		t.Fatalf("Me() at the base URL: %v", err)
	}
	if me.User.Email != "ana@example.com" || me.Key.Prefix != client.PrefixOf(seed.AdminToken) {
		t.Errorf("Me() = %+v", me)
	}

	withPath, err := client.New(url+"/v1", client.WithKeys(seed.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	_, err = withPath.Me(context.Background())
	if !errors.Is(err, client.ErrNotBOS) {
		t.Fatalf("Me() under /v1: error = %v, want ErrNotBOS", err)
	}
	for _, want := range []string{"user.id", "workspace.id", "key.id", url + "/v1", "base URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
