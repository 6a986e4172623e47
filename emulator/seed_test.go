package emulator

import (
	"context"
	"errors"
	"path/filepath"
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
