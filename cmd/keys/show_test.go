package keys

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/cmd/cmdutil"
	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
	"github.com/plana-cli/plana/cmd/keys/rotation"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/lineage"
)

// callAs makes an automation call with key from a given user agent, as the
// emulator records it in the execution log.
func callAs(t *testing.T, e *cmdtest.Env, key, ua, path string) {
	t.Helper()
	c, err := client.New(e.URL, client.WithKeys(key), client.WithUserAgent(ua))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(context.Background(), client.Request{Method: http.MethodGet, Path: path}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestShowRun(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	pt, k := e.MintOwn("Show me")
	for range 3 {
		callAs(t, e, pt, "worker/2.0", "/v1/stock-levels")
	}
	callAs(t, e, pt, "forgotten-cron/0.1", "/v1/orders")

	// The emulator writes its log asynchronously: poll until all four calls
	// are visible rather than sleeping.
	var res ShowResult
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.Out.Reset()
		if err := e.Run(NewCmdShow(e.Factory, nil), k.Prefix, "-o", "json"); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
			t.Fatalf("invalid JSON: %v\n%s", err, e.Out)
		}
		if res.Usage.Calls >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res.Key.ID != k.ID || res.Key.Name != "Show me" {
		t.Errorf("key = %+v", res.Key)
	}
	if res.Usage.Calls != 4 || len(res.Usage.Sources) != 2 {
		t.Fatalf("usage = %+v", res.Usage)
	}
	top := res.Usage.Sources[0]
	if top.UserAgent != "worker/2.0" || top.Path != "/v1/stock-levels" || top.Calls != 3 || top.SourceIP == "" {
		t.Errorf("busiest source = %+v", top)
	}
	if res.Usage.Sources[1].UserAgent != "forgotten-cron/0.1" || res.Usage.Sources[1].Calls != 1 {
		t.Errorf("second source = %+v", res.Usage.Sources[1])
	}
	if len(res.Usage.CallsPerHour) != 48 || res.Usage.CallsPerHour[47] != 4 {
		t.Errorf("calls per hour = %v", res.Usage.CallsPerHour)
	}

	e.Out.Reset()
	if err := e.Run(NewCmdShow(e.Factory, nil), "Show me"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Show me", k.Prefix, "worker/2.0", "forgotten-cron/0.1", "█", "Rotate by:"} {
		if !strings.Contains(e.Out.String(), w) {
			t.Errorf("show output lacks %q:\n%s", w, e.Out)
		}
	}
	e.AssertNoSecrets(pt)

	if err := e.Run(NewCmdShow(e.Factory, nil), "Show me", "--since", "soon"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("bad --since: %v", err)
	}
}

func TestSecretRun(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	pt, k := e.MintOwn("Held here")
	if err := e.Store.Set(secret.KeyName(k.ID), pt); err != nil {
		t.Fatal(err)
	}

	for _, arg := range []string{k.ID, k.Prefix, "Held here"} {
		e.Out.Reset()
		if err := e.Run(NewCmdSecret(e.Factory, nil), arg); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if e.Out.String() != pt {
			t.Errorf("%s: stdout is not exactly the plaintext (len %d, want %d, no newline)", arg, e.Out.Len(), len(pt))
		}
	}

	e.Out.Reset()
	e.IO.SetStdoutTTY(true)
	err := e.Run(NewCmdSecret(e.Factory, nil), k.ID)
	if err == nil || !strings.Contains(err.Error(), "--force-tty") || e.Out.Len() != 0 {
		t.Errorf("TTY stdout: err = %v, printed %d bytes", err, e.Out.Len())
	}
	if err := e.Run(NewCmdSecret(e.Factory, nil), k.ID, "--force-tty"); err != nil || e.Out.String() != pt+"\n" {
		t.Errorf("--force-tty: err = %v", err)
	}
	e.IO.SetStdoutTTY(false)

	e.Out.Reset()
	err = e.Run(NewCmdSecret(e.Factory, nil), "Nightly stock sync (2025)")
	if err == nil || !strings.Contains(err.Error(), "cannot be recovered") || !strings.Contains(err.Error(), "plana keys rotate") {
		t.Errorf("a key whose plaintext plana never had: %v", err)
	}
	if e.Out.Len() != 0 {
		t.Error("wrote to stdout on failure")
	}
}

// A key in an unfinished rotation is shown with both keys' traffic on one
// scale, whichever of the two is asked for.
func TestShowDuringRotation(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	envFile := e.AutomationEnvFile()
	err := e.Run(rotation.NewCmdRotate(e.Factory, nil), "Nightly stock sync (2025)", "--to", "env-file:"+envFile, "--quiet-period", "1h", "--no-wait", "-o", "json")
	var rot rotate.Result
	if json.Unmarshal(e.Out.Bytes(), &rot); rot.New == nil {
		t.Fatalf("rotate: %v", err)
	}
	newPlain, _ := e.Store.Get(secret.KeyName(rot.New.ID))
	for range 4 {
		callAs(t, e, newPlain, "stock-sync/1.5", "/v1/stock-levels")
	}
	last := func(cs []int) int { return cs[len(cs)-1] }
	for _, key := range []string{rot.Old.Prefix, rot.New.Prefix} {
		var res ShowResult
		deadline := time.Now().Add(10 * time.Second)
		for {
			e.Out.Reset()
			if err := e.Run(NewCmdShow(e.Factory, nil), key, "-o", "json"); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			// 4 calls plus plana's own check that the new key answers.
			if (res.Rotation != nil && last(res.Rotation.NewCallsPerHour) >= 5) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		ru := res.Rotation
		if ru == nil || ru.Old.ID != rot.Old.ID || ru.New.ID != rot.New.ID || ru.Step != rotate.Deployed {
			t.Fatalf("show %s: rotation %+v", key, ru)
		}
		if last(ru.NewCallsPerHour) != 5 || len(ru.OldCallsPerHour) != 48 || len(ru.NewCallsPerHour) != 48 {
			t.Errorf("show %s: new key calls this hour %d, want 5", key, last(ru.NewCallsPerHour))
		}
	}
	e.Out.Reset()
	if err := e.Run(NewCmdShow(e.Factory, nil), rot.New.Prefix); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`  new ` + rot.New.Prefix + `  [▁▂▃▄▅▆▇]*█  5\n`).MatchString(e.Out.String()) {
		t.Errorf("no chart line for the new key:\n%s", e.Out)
	}
	e.AssertNoSecrets()
}

// During a rotation, keys show follows each source of the old key: one that
// has reached the new key is "moved", one that has not holds the gate until
// its quiet time has passed. Both in the text and in -o json's
// rotation.migration.
func TestShowMigrationSourceBySource(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	// A key of its own: the demo's has a seeded history of other sources.
	pt, k := e.MintOwn("Migrating")
	callAs(t, e, pt, "stock-sync/1.5", "/v1/stock-levels")
	callAs(t, e, pt, "forgotten-cron/0.1", "/v1/orders")
	envFile := filepath.Join(t.TempDir(), "sync.env")
	if err := os.WriteFile(envFile, []byte("PLANA_KEY="+pt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := e.Run(rotation.NewCmdRotate(e.Factory, nil), k.ID, "--to", "env-file:"+envFile, "--quiet-period", "1h", "--no-wait", "-o", "json")
	var rot rotate.Result
	if json.Unmarshal(e.Out.Bytes(), &rot); rot.New == nil {
		t.Fatalf("rotate: %v\n%s", err, e.ErrOut)
	}
	newPlain, err := e.Store.Get(secret.KeyName(rot.New.ID))
	if err != nil {
		t.Fatal(err)
	}
	callAs(t, e, newPlain, "stock-sync/1.5", "/v1/stock-levels")

	// The JSON read through its field names, not through the Go types, so
	// a renamed field fails here.
	type migration struct {
		SourceIP  string    `json:"source_ip"`
		UserAgent string    `json:"user_agent"`
		OldCalls  int       `json:"old_calls"`
		OldLast   time.Time `json:"old_last"`
		NewFirst  time.Time `json:"new_first"`
		QuietTime string    `json:"quiet_time"`
		HoldUntil time.Time `json:"hold_until"`
		Moved     bool      `json:"moved"`
		Holding   bool      `json:"holding"`
	}
	var ms []migration
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.Out.Reset()
		if err := e.Run(NewCmdShow(e.Factory, nil), rot.Old.Prefix, "-o", "json"); err != nil {
			t.Fatal(err)
		}
		var res struct {
			Rotation *struct {
				Migration []migration `json:"migration"`
			} `json:"rotation"`
		}
		if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
			t.Fatalf("invalid JSON: %v\n%s", err, e.Out)
		}
		if res.Rotation != nil {
			ms = res.Rotation.Migration
		}
		// The emulator writes its log asynchronously.
		if (len(ms) == 2 && ms[1].Moved) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(ms) != 2 {
		t.Fatalf("rotation.migration has %d sources, want 2:\n%s", len(ms), e.Out)
	}
	// Holding sources come first.
	held, moved := ms[0], ms[1]
	if held.UserAgent != "forgotten-cron/0.1" || held.SourceIP == "" || held.OldCalls != 1 || held.Moved || !held.Holding ||
		!held.NewFirst.IsZero() || held.QuietTime != "1h" || !held.HoldUntil.Equal(held.OldLast.Add(time.Hour)) {
		t.Errorf("the source not on the new key: %+v", held)
	}
	if moved.UserAgent != "stock-sync/1.5" || moved.SourceIP == "" || moved.OldCalls != 1 || !moved.Moved || moved.Holding ||
		moved.NewFirst.IsZero() || moved.NewFirst.Before(moved.OldLast) {
		t.Errorf("the source on the new key: %+v", moved)
	}

	e.Out.Reset()
	if err := e.Run(NewCmdShow(e.Factory, nil), rot.Old.Prefix); err != nil {
		t.Fatal(err)
	}
	out := e.Out.String()
	const heading = "\nMigration, source by source (the old key's calls over the last 30d):\n"
	i := strings.Index(out, heading)
	if i < 0 {
		t.Fatalf("no migration section:\n%s", out)
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	// On a pipe the table is one tab-separated line per source, no header.
	want := strings.Join([]string{held.SourceIP, held.UserAgent, rfc(held.OldLast), "-", "-", "holds the gate until " + rfc(held.HoldUntil)}, "\t") + "\n" +
		strings.Join([]string{moved.SourceIP, moved.UserAgent, rfc(moved.OldLast), rfc(moved.NewFirst), "-", "moved"}, "\t") + "\n"
	if !strings.HasPrefix(out[i+len(heading):], want) {
		t.Errorf("migration section:\n%s\nwant it to start:\n%s", out[i:], want)
	}
	e.AssertNoSecrets(pt, newPlain)
}

// Issue 19 (A1): a member's forged successor of the admin's key is shown,
// in the old key's view and in its own, as a claim that is not trusted,
// with who made it and why; the line of descent does not take it in.
func TestShowNamesAClaimant(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	ctx := context.Background()
	old, err := cmdutil.ResolveKey(ctx, e.AdminClient(), "Nightly stock sync (2025)")
	if err != nil {
		t.Fatal(err)
	}
	memberToken, err := e.Emu.SeedDemoMember(ctx)
	if err != nil {
		t.Fatal(err)
	}
	member, err := client.New(e.URL, client.WithKeys(memberToken))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := member.CreateKey(ctx, client.CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read"},
		Description: lineage.Claim{OldPrefix: old.Prefix, OldName: old.Name, By: "ana@example.com", On: e.Emu.Now(), Reason: "scheduled"}.Description()}, "forge")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key  string
		want []string
	}{
		{old.Prefix, []string{"Nightly stock sync (2026) (" + forged.APIKey.Prefix + "), active, created ", " by ben@example.com (member), claims to replace this key: NOT TRUSTED, ignored: its scopes (stock:read) are not the old key's"}},
		{forged.APIKey.Prefix, []string{"Claims to replace Nightly stock sync (2025) (" + old.Prefix + "): NOT TRUSTED, ignored: ", "its description names ana@example.com, but ben@example.com created it"}},
	} {
		e.Out.Reset()
		if err := e.Run(NewCmdShow(e.Factory, nil), c.key); err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(e.Out.String(), w) {
				t.Errorf("keys show %s lacks %q:\n%s", c.key, w, e.Out)
			}
		}
		if strings.Contains(e.Out.String(), "Replaced by") || strings.Contains(e.Out.String(), "Replaces:") {
			t.Errorf("keys show %s links the claimant into the line of descent:\n%s", c.key, e.Out)
		}
		e.Out.Reset()
		if err := e.Run(NewCmdShow(e.Factory, nil), c.key, "-o", "json"); err != nil {
			t.Fatal(err)
		}
		var res struct {
			Lineage struct {
				Successors []LineageKey      `json:"successors"`
				Claimants  []json.RawMessage `json:"claimants"`
				Claim      json.RawMessage   `json:"untrusted_claim"`
			} `json:"lineage"`
		}
		if err := json.Unmarshal(e.Out.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		claim := string(res.Lineage.Claim)
		if c.key == old.Prefix && len(res.Lineage.Claimants) == 1 {
			claim = string(res.Lineage.Claimants[0])
		}
		if len(res.Lineage.Successors) != 0 || !strings.Contains(claim, `"not_trusted_because"`) || !strings.Contains(claim, `"id": "`+forged.APIKey.ID+`"`) {
			t.Errorf("keys show %s -o json: %s", c.key, e.Out)
		}
	}
	e.AssertNoSecrets(memberToken, forged.Plaintext)
}
