package rotation_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
)

// lostManagementKey is a management key plana used on the machine lost-1.
func lostManagementKey(t *testing.T, e *cmdtest.Env) client.APIKey {
	t.Helper()
	ctx := context.Background()
	ck, err := e.AdminClient().CreateKey(ctx, client.CreateKeyRequest{Name: "lost-1 plana", Scopes: []string{client.ScopeManage}}, client.NewIdempotencyKey())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(e.URL, client.WithKeys(ck.Plaintext), client.WithUserAgent("plana/1.0.0 (linux; lost-1)"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(ctx); err != nil {
		t.Fatal(err)
	}
	return ck.APIKey
}

func keyStatus(t *testing.T, e *cmdtest.Env, id string) string {
	t.Helper()
	k, err := e.AdminClient().GetKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return k.Status
}

// On a terminal, the management keys' revoke is asked for before the run;
// declined, they stay, and the run says how to revoke them later.
func TestStoredOnAsksBeforeRevokingManagementKeys(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	m := lostManagementKey(t, e)

	code := run(e, "keys", "rotate", "--stored-on", "lost-1", "--emergency", "lost-device", "--dry-run", "-o", "json")
	var dry struct {
		Plan struct {
			RevokeLast []struct {
				Key client.APIKey `json:"key"`
			} `json:"revoke_last"`
			InUse *struct {
				Next string `json:"next"`
			} `json:"in_use"`
		} `json:"plan"`
		Revocations []struct {
			State string `json:"state"`
		} `json:"revocations"`
	}
	if err := json.Unmarshal(e.Out.Bytes(), &dry); err != nil || code != cmdutil.ExitOK {
		t.Fatalf("exit %d, %v:\n%s", code, err, e.Out.String())
	}
	if len(dry.Plan.RevokeLast) != 1 || dry.Plan.RevokeLast[0].Key.ID != m.ID || len(dry.Revocations) != 1 || dry.Revocations[0].State != "planned" {
		t.Fatalf("dry run: %+v", dry)
	}
	// The seed's history has the admin's key used on ana-laptop, not here.
	if dry.Plan.InUse != nil {
		t.Errorf("in use: %+v", dry.Plan.InUse)
	}

	e.IO.SetStdinTTY(true)
	e.IO.SetStderrTTY(true)
	e.In.WriteString("n\n")
	code = run(e, "keys", "rotate", "--stored-on", "lost-1", "--emergency", "lost-device")
	if code != cmdutil.ExitOK || !strings.Contains(e.ErrOut.String(), "Revoke the 1 management key above last") ||
		!strings.Contains(e.ErrOut.String(), "The management keys stay active") || keyStatus(t, e, m.ID) != client.StatusActive {
		t.Fatalf("declined: exit %d, %s, stderr:\n%s", code, keyStatus(t, e, m.ID), e.ErrOut.String())
	}
	if !strings.Contains(e.Out.String(), "not confirmed: revoke it with plana keys revoke "+m.ID+" --force --yes") {
		t.Errorf("stdout does not say how to revoke it later:\n%s", e.Out.String())
	}

	e.In.WriteString("y\n")
	if code := run(e, "keys", "rotate", "--stored-on", "LOST-1", "--emergency", "lost-device"); code != cmdutil.ExitOK || keyStatus(t, e, m.ID) != client.StatusRevoked {
		t.Fatalf("confirmed: exit %d, %s, stderr:\n%s", code, keyStatus(t, e, m.ID), e.ErrOut.String())
	}
}
