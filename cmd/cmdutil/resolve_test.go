package cmdutil_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
)

func TestResolveKey(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	ctx := context.Background()
	c := e.AdminClient()
	me, err := c.Me(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two active keys sharing a name, and one revoked key sharing another
	// with an active one.
	_, twinA, err := e.Emu.MintKey(ctx, me.User.ID, "Twin", []string{"stock:read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, twinB, err := e.Emu.MintKey(ctx, me.User.ID, "Twin", []string{"stock:read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, oldSolo, err := e.Emu.MintKey(ctx, me.User.ID, "Solo", []string{"stock:read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, solo, err := e.Emu.MintKey(ctx, me.User.ID, "Solo", []string{"stock:read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeKey(ctx, oldSolo.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		arg     string
		wantID  string
		wantErr []string
		flagErr bool
	}{
		{name: "by id", arg: solo.ID, wantID: solo.ID},
		{name: "by prefix", arg: twinA.Prefix, wantID: twinA.ID},
		{name: "by name", arg: "Solo", wantID: solo.ID},
		{name: "revoked by id", arg: oldSolo.ID, wantID: oldSolo.ID},
		{name: "ambiguous", arg: "Twin", wantErr: []string{twinA.ID, twinB.ID, twinA.Prefix, "created"}},
		{name: "unknown name", arg: "Nope", wantErr: []string{"plana keys list", `"Nope"`}},
		{name: "unknown id", arg: "key_nope", wantErr: []string{"plana keys list"}},
		{name: "unknown prefix", arg: "pa_live_ZZZZZZZZ", wantErr: []string{"prefix"}},
		{name: "plaintext refused", arg: e.Seed.AutomationKey, wantErr: []string{"prefix", client.PrefixOf(e.Seed.AutomationKey)}, flagErr: true},
		{name: "empty", arg: " ", flagErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := cmdutil.ResolveKey(ctx, c, tt.arg)
			if tt.wantID != "" {
				if err != nil {
					t.Fatal(err)
				}
				if k.ID != tt.wantID {
					t.Fatalf("resolved %s, want %s", k.ID, tt.wantID)
				}
				return
			}
			if err == nil {
				t.Fatalf("resolved %s, want an error", k.ID)
			}
			var fe *cmdutil.FlagError
			if errors.As(err, &fe) != tt.flagErr {
				t.Errorf("FlagError = %v, want %v (%v)", !tt.flagErr, tt.flagErr, err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), e.Seed.AutomationKey) {
				t.Error("the error repeats the plaintext")
			}
		})
	}
}

func TestResolveToken(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	tok, err := cmdutil.ResolveToken("default", getenv, e.Factory.Secrets)
	if err != nil || tok.Source != cmdutil.TokenFromKeyring || tok.Value() != e.Seed.AdminToken {
		t.Fatalf("keyring token: source %v, err %v", tok.Source, err)
	}
	env["PLANA_TOKEN"] = e.Seed.AutomationKey
	tok, err = cmdutil.ResolveToken("default", getenv, e.Factory.Secrets)
	if err != nil || tok.Source != cmdutil.TokenFromEnv || tok.Value() != e.Seed.AutomationKey {
		t.Fatalf("PLANA_TOKEN must win over the keyring: source %v, err %v", tok.Source, err)
	}
	if s := tok.String(); s != client.PrefixOf(e.Seed.AutomationKey) {
		t.Errorf("Token prints as %q, want its prefix", s)
	}
	env["PLANA_TOKEN"] = "pa_live_short"
	_, err = cmdutil.ResolveToken("default", getenv, e.Factory.Secrets)
	var ae *cmdutil.AuthError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "PLANA_TOKEN") {
		t.Errorf("malformed PLANA_TOKEN: %v", err)
	}
	delete(env, "PLANA_TOKEN")
	_, err = cmdutil.ResolveToken("staging", getenv, e.Factory.Secrets)
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "staging") {
		t.Errorf("no token for profile staging: %v", err)
	}
}
