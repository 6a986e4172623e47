package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
)

// Issue 19 (G20): a machine that took part in nothing sees, in keys
// status, the rotation under way that the server shows (who started it,
// on which machine), the claimants plana ignores, and, in -o json too, the
// calls refused since a recent revoke.
func TestStatusFromTheServer(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	ctx := context.Background()
	envFile := e.AutomationEnvFile()
	e.Setenv("PLANA_MACHINE_NAME", "laptop-a")
	err := e.Run(NewCmdRotate(e.Factory, nil), "Nightly stock sync (2025)", "--to", "env-file:"+envFile, "--quiet-period", "1h", "--no-wait", "-o", "json")
	var pe *cmdutil.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("want exit 3, got %v\n%s", err, e.ErrOut)
	}
	var res rotate.Result
	if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil || res.New == nil {
		t.Fatalf("json: %v\n%s", err, e.Out)
	}

	// The member forges a successor of the same key, naming the admin.
	memberToken, err := e.Emu.SeedDemoMember(ctx)
	if err != nil {
		t.Fatal(err)
	}
	member, err := client.New(e.URL, client.WithKeys(memberToken))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := member.CreateKey(ctx, client.CreateKeyRequest{Name: "Nightly stock sync (2026-9)", Scopes: []string{"stock:read"},
		Description: lineage.Claim{OldPrefix: res.Old.Prefix, OldName: res.Old.Name, By: "ana@example.com", On: e.Emu.Now(), Reason: "scheduled"}.Description()}, "forge")
	if err != nil {
		t.Fatal(err)
	}
	// A key revoked lately, still called from somewhere.
	pt, gone := e.MintOwn("Gone soon")
	if _, err := e.AdminClient().RevokeKey(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	refusedCall(t, e, pt, gone.ID)

	e.Setenv("XDG_STATE_HOME", t.TempDir()) // another machine
	e.Out.Reset()
	if err := e.Run(NewCmdStatus(e.Factory, nil), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var st StatusResult
	if err := json.Unmarshal(e.Out.Bytes(), &st); err != nil {
		t.Fatalf("json: %v\n%s", err, e.Out)
	}
	if len(st.Rotations) != 1 {
		t.Fatalf("rotations %+v, want the one under way on the server", st.Rotations)
	}
	r := st.Rotations[0]
	if r.Source != "server" || r.Old.ID != res.Old.ID || r.New == nil || r.New.ID != res.New.ID || r.StartedBy != "ana@example.com" || r.Host != "laptop-a" || r.Reason != rotate.ReasonScheduled {
		t.Errorf("rotation %+v", r)
	}
	var cs struct {
		Claimants []struct {
			ID        string      `json:"id"`
			CreatedBy client.User `json:"created_by"`
			Replaces  struct {
				ID string `json:"id"`
			} `json:"claims_to_replace"`
			Claim *lineage.Claim `json:"claim"`
			Why   []string       `json:"not_trusted_because"`
		} `json:"claimants"`
	}
	if err := json.Unmarshal(e.Out.Bytes(), &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs.Claimants) != 1 {
		t.Fatalf("claimants %+v, want the forgery", cs.Claimants)
	}
	if c := cs.Claimants[0]; c.ID != forged.APIKey.ID || c.Replaces.ID != res.Old.ID || c.CreatedBy.Role != "member" || c.Claim == nil || c.Claim.By != "ana@example.com" || len(c.Why) != 3 {
		t.Errorf("claimant %+v", c)
	}
	if len(st.RefusedSinceRevoke) != 1 || st.RefusedSinceRevoke[0].Key.ID != gone.ID || len(st.RefusedSinceRevoke[0].Sources) != 1 {
		t.Errorf("refused %+v, want the revoked key's one call", st.RefusedSinceRevoke)
	}

	e.Out.Reset()
	if err := e.Run(NewCmdStatus(e.Factory, nil)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"elsewhere", "started by ana@example.com on laptop-a", "plana keys rotate " + res.Old.ID,
		"Not trusted, ignored", "Nightly stock sync (2026-9) (" + forged.APIKey.Prefix + ")", "ben@example.com (member)",
		"its scopes (stock:read) are not the old key's", "Refused since the revoke of Gone soon"} {
		if !strings.Contains(e.Out.String(), want) {
			t.Errorf("keys status lacks %q:\n%s", want, e.Out)
		}
	}
	if strings.Contains(e.ErrOut.String(), "No rotation under way") {
		t.Errorf("keys status says no rotation is under way:\n%s", e.ErrOut)
	}
	e.AssertNoSecrets(pt, memberToken, forged.Plaintext)
}

// refusedCall presents a revoked key once and waits until the emulator has
// logged its 401.
func refusedCall(t *testing.T, e *cmdtest.Env, key, id string) {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(e.URL, client.WithKeys(key), client.WithRetry(1, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/stock-levels"}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := e.AdminClient().ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: id})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if en.Status == http.StatusUnauthorized {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the emulator never logged the refused call")
		}
		time.Sleep(20 * time.Millisecond) // polling the emulator's async log with a deadline
	}
}

// Issue 19 (23): SINCE is measured on BOS's clock only. This machine's
// clock is a year behind BOS's here; a rotation saved a moment ago by
// BOS's clock is "just now"; once BOS's clock steps back, it is ahead of
// BOS's present and shows its time, saying so; and with BOS not read there
// is no present to measure from: the time, in UTC. Never "in about 1 year".
func TestStatusSinceOnBOSClock(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	envFile := e.AutomationEnvFile()
	const year = 400 * 24 * time.Hour
	e.Emu.Advance(year)
	err := e.Run(NewCmdRotate(e.Factory, nil), "Nightly stock sync (2025)", "--to", "env-file:"+envFile, "--quiet-period", "1h", "--no-wait")
	var pe *cmdutil.PendingError
	if !errors.As(err, &pe) {
		t.Fatalf("want exit 3, got %v\n%s", err, e.ErrOut)
	}
	dir, err := e.Factory.StateDir()
	if err != nil {
		t.Fatal(err)
	}
	items, _ := rotate.Status(dir)
	if len(items) != 1 {
		t.Fatalf("journals %+v, want the rotation's", items)
	}
	stamp := items[0].Since.UTC().Format("2006-01-02 15:04 UTC")
	read := true
	status := func() string {
		t.Helper()
		e.Out.Reset()
		cmd := NewCmdStatus(e.Factory, func(ctx context.Context, o *StatusOptions) error {
			o.Now = time.Now // this machine's clock, not BOS's
			if !read {
				o.Client = func() (*client.Client, error) { return nil, errors.New("not logged in") }
			}
			return statusRun(ctx, o)
		})
		if err := e.Run(cmd); err != nil {
			t.Fatal(err)
		}
		out := e.Out.String()
		if strings.Contains(out, "in about") {
			t.Errorf("keys status shows a time in the future:\n%s", out)
		}
		return out
	}
	if out := status(); !strings.Contains(out, "just now") {
		t.Errorf("a rotation saved a moment ago by BOS's clock is not \"just now\":\n%s", out)
	}
	e.Emu.Advance(-year)
	if out := status(); !strings.Contains(out, stamp+" (ahead of BOS's clock)") {
		t.Errorf("SINCE ahead of BOS's clock does not show %s and say so:\n%s", stamp, out)
	}
	read = false
	if out := status(); !strings.Contains(out, stamp) || strings.Contains(out, "ago") {
		t.Errorf("SINCE with BOS not read is not the time %s:\n%s", stamp, out)
	}
}
