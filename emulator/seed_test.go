package emulator

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

func TestSeedDemo(t *testing.T) {
	e := &env{t: t, dbPath: filepath.Join(t.TempDir(), "bos.db"), log: &syncBuffer{}}
	e.start(Config{DBPath: e.dbPath, BcryptCost: 4})
	res, err := e.s.SeedDemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.adminToken = res.AdminToken
	r := e.do("GET", "/v1/me", res.AdminToken, nil)
	e.want(r, 200, "")
	me := decode[client.Me](t, r)
	if me.User.Email != "ana@example.com" || me.User.Role != "admin" || me.Workspace.Name != "Acme Retail" || me.Key.Name != "plana admin (2026)" {
		t.Fatalf("me %+v", me)
	}
	r = e.do("GET", "/v1/api-keys?status=all", res.AdminToken, nil)
	e.want(r, 200, "")
	byName := map[string]client.APIKey{}
	for _, k := range decode[client.ListKeysResponse](t, r).APIKeys {
		byName[k.Name] = k
	}
	now := e.s.Now()
	nightly := byName["Nightly stock sync (2025)"]
	if now.Sub(nightly.CreatedAt) < 365*24*time.Hour || nightly.CreatedBy.Email != "ana@example.com" || nightly.LastUsedAt == nil {
		t.Fatalf("nightly %+v", nightly)
	}
	if webhook := byName["Webhook relay"]; webhook.CreatedBy.Email != "ben@example.com" || webhook.LastUsedAt == nil || now.Sub(*webhook.LastUsedAt) > time.Hour+time.Minute {
		t.Fatalf("webhook %+v", webhook)
	}
	if rep := byName["Reporting export (2026)"]; rep.LastUsedAt != nil || rep.CreatedBy.Email != "ben@example.com" {
		t.Fatalf("reporting %+v", rep)
	}
	if legacy := byName["Legacy import (2024)"]; legacy.Status != "revoked" || legacy.RevokedBy == nil || legacy.LastUsedAt.After(*legacy.RevokedAt) {
		t.Fatalf("legacy %+v", legacy)
	}

	entries := e.logEntries("?page_size=1000&key_id=" + nightly.ID)
	if len(entries) < 30 || !entries[0].At.Equal(*nightly.LastUsedAt) {
		t.Fatalf("%d nightly entries", len(entries))
	}
	days := map[string]bool{}
	for _, en := range entries {
		if en.At.Hour() != 2 || en.SourceIP != "203.0.113.7" || en.UserAgent != "stock-sync/1.4" {
			t.Fatalf("entry %+v", en)
		}
		if now.Sub(en.At) > 30*24*time.Hour {
			t.Fatalf("entry older than 30 days: %v", en.At)
		}
		days[en.At.Format(time.DateOnly)] = true
	}
	if len(days) != 30 {
		t.Fatalf("%d nightly runs, want 30", len(days))
	}

	// The automation's key does its own calls but cannot manage keys.
	e.want(e.do("GET", "/v1/stock-levels", res.AutomationKey, nil), 200, "")
	e.want(e.do("GET", "/v1/api-keys", res.AutomationKey, nil), 403, client.CodeForbidden)
	if client.PrefixOf(res.AutomationKey) != nightly.Prefix {
		t.Fatal("AutomationKey is not the nightly key")
	}

	// A second seed issues nothing.
	keys := e.count("api_keys")
	if _, err := e.s.SeedDemo(context.Background()); !errors.Is(err, ErrAlreadySeeded) {
		t.Fatalf("second seed: %v", err)
	}
	if e.count("api_keys") != keys {
		t.Fatal("a second seed added keys")
	}
}

// The demo member's management key plays the member: it lists every key,
// creates keys only with the scopes the member holds and revokes only the
// keys it issued, and every key it touches says who created it, with the
// role.
func TestSeedDemoMember(t *testing.T) {
	e := &env{t: t, dbPath: filepath.Join(t.TempDir(), "bos.db"), log: &syncBuffer{}}
	e.start(Config{DBPath: e.dbPath, BcryptCost: 4})
	ctx := context.Background()
	if _, err := e.s.SeedDemoMember(ctx); err == nil {
		t.Fatal("SeedDemoMember on an unseeded database issued a key")
	}
	res, err := e.s.SeedDemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.adminToken = res.AdminToken
	ben, err := e.s.SeedDemoMember(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ParseKey(ben); err != nil {
		t.Fatalf("the member's token is not a key: %v", err)
	}
	me := decode[client.Me](t, e.do("GET", "/v1/me", ben, nil))
	if me.User.Email != "ben@example.com" || me.User.Role != "member" || !slices.Equal(me.Key.Scopes, []string{"keys:manage", "stock:read"}) ||
		me.Key.CreatedBy.Role != "member" {
		t.Fatalf("the member's /v1/me: %+v", me)
	}
	all := decode[client.ListKeysResponse](t, e.do("GET", "/v1/api-keys?status=all", ben, nil)).APIKeys
	byName := map[string]client.APIKey{}
	for _, k := range all {
		byName[k.Name] = k
	}
	nightly := byName["Nightly stock sync (2025)"]
	if len(all) != e.count("api_keys") || nightly.CreatedBy.Role != "admin" {
		t.Fatalf("the member lists %d keys of %d; nightly created_by %+v", len(all), e.count("api_keys"), nightly.CreatedBy)
	}

	// A forged successor: a member may create one with the scopes it holds,
	// and write any description. created_by says who did.
	r, forged := e.createKey(ben, client.CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read"},
		Description: "Rotation of " + nightly.Prefix + " (Nightly stock sync (2025)) by ana@example.com on 2026-01-10: scheduled"})
	e.want(r, 201, "")
	if forged.APIKey.CreatedBy.Email != "ben@example.com" || forged.APIKey.CreatedBy.Role != "member" {
		t.Fatalf("the member's key: created_by %+v", forged.APIKey.CreatedBy)
	}
	// Not with a scope it lacks, nor revoking the admin's key.
	r, _ = e.createKey(ben, client.CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read", "stock:write"}})
	e.want(r, 403, client.CodeForbidden)
	e.want(e.do("POST", "/v1/api-keys/"+nightly.ID+"/revoke", ben, nil), 403, client.CodeForbidden)
	if k := e.getKey(nightly.ID); !k.Active() {
		t.Fatal("a member's refused revoke revoked the admin's key")
	}
	r = e.do("POST", "/v1/api-keys/"+forged.APIKey.ID+"/revoke", ben, nil)
	e.want(r, 200, "")
	if k := decode[client.APIKey](t, r); k.RevokedBy == nil || k.RevokedBy.Email != "ben@example.com" || k.RevokedBy.Role != "member" {
		t.Fatalf("revoked by the member: %+v", k.RevokedBy)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "90s": 90 * time.Second, "36h": 36 * time.Hour, "2d": 48 * time.Hour,
		"1d12h": 36 * time.Hour, "365d": 365 * 24 * time.Hour, "-1d": -24 * time.Hour, "1d30m": 24*time.Hour + 30*time.Minute,
	} {
		if got, err := duration.Parse(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "1.5d", "2days", "1d-1h", "soon", "1d2d", "99999999d"} {
		if _, err := duration.Parse(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no path":         {},
		"bcrypt cost":     {DBPath: ":memory:", BcryptCost: 40},
		"granularity":     {DBPath: ":memory:", LastUsedGranularity: -time.Second},
		"path with a '?'": {DBPath: filepath.Join(t.TempDir(), "a?b.db")},
		"path in a file":  {DBPath: "/dev/null/bos.db"},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("%s: no error", name)
		}
	}
}

func TestInMemoryDatabase(t *testing.T) {
	s, err := New(Config{DBPath: ":memory:", BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.SeedDemo(context.Background())
	if err != nil || res.AdminToken == "" {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM api_keys`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("%d keys, %v", n, err)
	}
}
