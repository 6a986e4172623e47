package emulator

import (
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// A revoked key still configured somewhere (the forgotten place after a
// rotation) is refused 401 and logged against the key, so the log shows
// where it is used from; last_used_at stays the last accepted call.
func TestRevokedKeyCallsAreLogged(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.admin, "forgotten", "stock:read", "keys:manage")
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	lastUsed := e.getKey(k.ID).LastUsedAt
	e.s.Advance(time.Hour)
	e.want(e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil), 200, "")

	e.want(e.do("GET", "/v1/stock-levels", tok, nil, "User-Agent", "stock-sync/1.4"), 401, client.CodeUnauthenticated)
	e.want(e.do("POST", "/v1/api-keys", tok, `{"name":"x","scopes":["a:b"]}`), 401, client.CodeUnauthenticated)

	// Not logged: no key proved, so none to attach the call to.
	parsed, _ := client.ParseKey(tok)
	wrongSecret := client.FormatKey("live", parsed.PublicID, strings.Repeat("w", client.SecretLen))
	unknown := client.FormatKey("live", "ZZZZZZZZ", strings.Repeat("y", client.SecretLen))
	for _, bad := range []string{wrongSecret, unknown, tok[:53], "garbage"} {
		e.want(e.do("GET", "/v1/stock-levels", bad, nil), 401, client.CodeUnauthenticated)
	}

	entries := e.logEntries("?key_id=" + k.ID)
	if len(entries) != 3 {
		t.Fatalf("%d entries for the key, want 3 (one accepted, two refused): %+v", len(entries), entries)
	}
	if en := entries[1]; en.Status != 401 || en.Path != "/v1/stock-levels" || en.KeyPrefix != k.Prefix || en.UserAgent != "stock-sync/1.4" || en.SourceIP == "" {
		t.Fatalf("refused call's entry %+v", en)
	}
	if en := entries[0]; en.Status != 401 || en.Method != "POST" || en.Path != "/v1/api-keys" {
		t.Fatalf("refused create's entry %+v", en)
	}
	if entries[2].Status != 200 {
		t.Fatalf("accepted call's entry %+v", entries[2])
	}
	if got := e.getKey(k.ID).LastUsedAt; got == nil || !got.Equal(*lastUsed) {
		t.Fatalf("last_used_at moved to %v by refused calls, want %v", got, lastUsed)
	}
	if byPrefix := e.logEntries("?key_prefix=" + k.Prefix); len(byPrefix) != 3 {
		t.Fatalf("%d entries by prefix, want 3", len(byPrefix))
	}
	if strings.Contains(e.log.String(), tok[len(client.LivePrefix)+client.PublicIDLen:]) {
		t.Fatal("the request log holds the revoked key's secret")
	}
}

// A revoked key the process has not seen pays one bcrypt to prove it (so the
// answer's timing does not tell a revoked id from a wrong secret), and none
// after: a forgotten worker retrying all night stays cheap.
func TestRevokedKeyLoggedAfterRestartCostsOneBcrypt(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.admin, "forgotten", "stock:read")
	e.want(e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil), 200, "")
	e.stop()
	e.start(Config{DBPath: e.dbPath, BcryptCost: 4})

	before := e.s.bcryptCalls.Load()
	for range 5 {
		e.want(e.do("GET", "/v1/stock-levels", tok, nil), 401, client.CodeUnauthenticated)
	}
	if got := e.s.bcryptCalls.Load() - before; got != 1 {
		t.Fatalf("%d bcrypt comparisons for 5 calls of a revoked key, want 1", got)
	}
	entries := e.logEntries("?key_id=" + k.ID)
	if len(entries) != 5 || entries[0].Status != 401 || entries[0].KeyPrefix != k.Prefix {
		t.Fatalf("%d entries, want 5 refused calls: %+v", len(entries), entries)
	}
	if got := e.getKey(k.ID).LastUsedAt; got != nil {
		t.Fatalf("a key never accepted has last_used_at %v", got)
	}
}
