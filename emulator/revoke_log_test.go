package emulator

import (
	"database/sql"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// revokedAfter counts, for a revoked key, the 200 entries stamped after its
// revoked_at, and reports whether its last_used_at is after it too: both
// must be nil for a revoke that wins.
func (e *env) revokedAfter(keyID string) (late200 int, lastUsedLate bool, revokedAt int64) {
	e.t.Helper()
	var lastUsed sql.NullInt64
	if err := e.s.db.QueryRow(`SELECT revoked_at, last_used_at FROM api_keys WHERE id = ?`, keyID).Scan(&revokedAt, &lastUsed); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.db.QueryRow(`SELECT count(*) FROM execution_log WHERE key_id = ? AND status = 200 AND at > ?`, keyID, revokedAt).Scan(&late200); err != nil {
		e.t.Fatal(err)
	}
	return late200, lastUsed.Valid && lastUsed.Int64 > revokedAt, revokedAt
}

// TestRevokeWinsOverTheLogUnderLoad revokes a key that 50 workers are
// calling as fast as they can, over several trials: a request is answered
// 200 only if its entry committed before the revoke did, so no 200 entry and
// no last_used_at is later than revoked_at, and every answer has its entry
// with the same status. Loopback only; each trial ends once every worker
// has seen its 401, or after 10 s.
func TestRevokeWinsOverTheLogUnderLoad(t *testing.T) {
	e := newEnv(t)
	const workers, trials = 50, 8
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer hc.CloseIdleConnections()
	for trial := range trials {
		tok, k := e.mint(e.admin, "victim", "stock:read")
		var ok200, refused atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(10 * time.Second)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					req, _ := http.NewRequest("GET", e.ts.URL+"/v1/stock-levels", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					resp, err := hc.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						ok200.Add(1)
					case 401:
						refused.Add(1)
						return
					default:
						t.Errorf("HTTP %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		if !eventually(t, 10*time.Second, func() bool { return ok200.Load() >= 200 }) {
			t.Fatal("the workers made no calls")
		}
		e.want(e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil), 200, "")
		wg.Wait()
		if refused.Load() != workers {
			t.Fatalf("trial %d: %d of %d workers saw their 401 within the deadline", trial, refused.Load(), workers)
		}
		late, lastUsedLate, _ := e.revokedAfter(k.ID)
		var logged200, logged401 int64
		e.s.db.QueryRow(`SELECT count(*) FROM execution_log WHERE key_id = ? AND status = 200`, k.ID).Scan(&logged200)
		e.s.db.QueryRow(`SELECT count(*) FROM execution_log WHERE key_id = ? AND status = 401`, k.ID).Scan(&logged401)
		t.Logf("trial %d: %d answered 200, %d answered 401; logged %d and %d; %d 200 entries after revoked_at",
			trial, ok200.Load(), refused.Load(), logged200, logged401, late)
		if late != 0 || lastUsedLate {
			t.Errorf("trial %d: %d entries with status 200 after revoked_at; last_used_at after it: %v", trial, late, lastUsedLate)
		}
		if logged200 != ok200.Load() || logged401 != refused.Load() {
			t.Errorf("trial %d: answers (%d 200, %d 401) and log (%d, %d) disagree", trial, ok200.Load(), refused.Load(), logged200, logged401)
		}
	}
}

// A key-list request held once its key is proven, while that key is
// revoked: released, it is refused 401 and logged 401, never given the keys.
func TestRevokeWinsOverAListInFlight(t *testing.T) {
	e := newEnv(t)
	tok, mgr := e.mint(e.admin, "leaver's plana", "keys:manage")
	e.want(e.do("GET", "/v1/me", tok, nil), 200, "")
	if err := e.s.ArmHold(Hold{Method: "GET", Path: "/v1/api-keys", KeyPrefix: mgr.Prefix, Authenticated: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.s.ReleaseHolds)
	listed := make(chan reply, 1)
	go func() { listed <- e.do("GET", "/v1/api-keys", tok, nil) }()
	e.awaitHeld("holding GET /v1/api-keys: authenticated", "the list")
	r, took := e.revokeTimed(mgr.ID)
	e.want(r, 200, "")
	t.Logf("revoke answered in %v with a list of its key in flight", took)
	e.s.ReleaseHolds()
	got := <-listed
	e.want(got, 401, client.CodeUnauthenticated)
	if strings.Contains(string(got.body), mgr.ID) || got.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("the refused list's answer: %s", got.body)
	}
	entries := e.logEntries("?key_id=" + mgr.ID)
	if len(entries) != 2 || entries[0].Status != 401 || entries[0].Path != "/v1/api-keys" || entries[1].Status != 200 {
		t.Fatalf("the key's log: %+v, want the list logged 401 after /v1/me's 200", entries)
	}
	if late, lastUsedLate, _ := e.revokedAfter(mgr.ID); late != 0 || lastUsedLate {
		t.Fatalf("%d 200 entries after revoked_at; last_used_at after it: %v", late, lastUsedLate)
	}
}

// revoked_at is when the revoke commits, not when its request was
// authenticated: a revoke held in between leaves the key working, and the
// calls it answered meanwhile all come before revoked_at.
func TestRevokedAtIsTheCommitTime(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.admin, "victim", "stock:read")
	if err := e.s.ArmHold(Hold{Method: "POST", Path: "/v1/api-keys/*/revoke", Authenticated: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.s.ReleaseHolds)
	revoked := make(chan reply, 1)
	go func() { revoked <- e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil) }()
	e.awaitHeld("/revoke: authenticated", "the revoke")
	for range 3 {
		e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	}
	e.s.ReleaseHolds()
	r := <-revoked
	e.want(r, 200, "")
	got := decode[client.APIKey](t, r)
	entries := e.logEntries("?key_id=" + k.ID)
	if len(entries) != 3 || got.RevokedAt == nil || !got.RevokedAt.After(entries[0].At) || !got.RevokedAt.After(*got.LastUsedAt) {
		t.Fatalf("revoked_at %v, last_used_at %v, newest call %v: want revoked_at after every accepted call", got.RevokedAt, got.LastUsedAt, entries)
	}
}
