package emulator

import (
	"crypto/sha256"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// revokeTimed revokes id with the admin's key and returns the answer and how
// long it took, failing if there is no answer within a deadline far above the
// contract's second: the figure is reported, the deadline only ends a hang.
func (e *env) revokeTimed(id string) (reply, time.Duration) {
	e.t.Helper()
	start := time.Now()
	done := make(chan reply, 1)
	go func() { done <- e.do("POST", "/v1/api-keys/"+id+"/revoke", e.adminToken, nil) }()
	select {
	case r := <-done:
		return r, time.Since(start)
	case <-time.After(5 * time.Second):
		e.t.Fatal("the revoke did not answer within 5 s while a request of its key was in flight")
	}
	return reply{}, 0
}

// A keys:manage key's create, in flight (authenticated, not yet handled)
// while the key is revoked: the revoke answers at once, and the create,
// handled after, writes nothing.
func TestRevokeWinsOverCreateInFlight(t *testing.T) {
	e := newEnv(t)
	tok, mgr := e.mint(e.admin, "leaver's plana", "keys:manage")
	if err := e.s.ArmHold(Hold{Method: "POST", Path: "/v1/api-keys", KeyPrefix: mgr.Prefix, Authenticated: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.s.ReleaseHolds)
	keys := e.count("api_keys")
	created := make(chan reply, 1)
	go func() { created <- e.do("POST", "/v1/api-keys", tok, `{"name":"planted","scopes":["stock:read"]}`) }()
	e.awaitHeld("holding POST /v1/api-keys: authenticated", "the create")

	r, took := e.revokeTimed(mgr.ID)
	e.want(r, 200, "")
	t.Logf("revoke answered in %v with a create of its key in flight", took)
	select {
	case c := <-created:
		t.Fatalf("the create was answered (%d) before its hold was released", c.status)
	default:
	}

	e.s.ReleaseHolds()
	c := <-created
	e.want(c, 401, client.CodeUnauthenticated)
	if got := e.count("api_keys"); got != keys {
		t.Fatalf("%d keys, want %d: a create whose key was revoked in flight stored a key", got, keys)
	}
	entries := e.logEntries("?key_id=" + mgr.ID)
	if len(entries) != 1 || entries[0].Status != 401 || entries[0].Method != "POST" {
		t.Fatalf("the refused create's log: %+v", entries)
	}
}

// The issue's own case: the create's headers are sent, its body held back,
// while the key is revoked.
func TestRevokeWinsOverCreateWithBodyHeldBack(t *testing.T) {
	e := newEnv(t)
	tok, mgr := e.mint(e.admin, "leaver's plana", "keys:manage")
	keys := e.count("api_keys")
	body, send := io.Pipe()
	// Ends the request if the test fails first, so the server can close.
	t.Cleanup(func() { send.CloseWithError(io.ErrUnexpectedEOF) })
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/api-keys", body)
	req.Header.Set("Authorization", "Bearer "+tok)
	answered := make(chan int, 1)
	go func() {
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Error(err)
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	send.Write([]byte(`{"name":"planted",`))
	// The key is cached once proven: the create is then past authentication.
	if !eventually(t, 10*time.Second, func() bool { _, ok := e.s.cache.get(sha256.Sum256([]byte(tok))); return ok }) {
		t.Fatal("the create never authenticated")
	}
	r, took := e.revokeTimed(mgr.ID)
	e.want(r, 200, "")
	t.Logf("revoke answered in %v with a create of its key waiting for its body", took)
	send.Write([]byte(`"scopes":["stock:read"]}`))
	send.Close()
	if status := <-answered; status != 401 {
		t.Fatalf("the create answered %d, want 401", status)
	}
	if got := e.count("api_keys"); got != keys {
		t.Fatalf("%d keys, want %d", got, keys)
	}
}

// Two keys revoking each other at once: the first revoke wins and the
// second, its key revoked, is refused; exactly one key ends revoked.
func TestKeysRevokingEachOther(t *testing.T) {
	e := newEnv(t)
	tokA, a := e.mint(e.admin, "a", "keys:manage")
	tokB, b := e.mint(e.admin, "b", "keys:manage")
	for _, k := range []client.APIKey{a, b} {
		if err := e.s.ArmHold(Hold{Method: "POST", Path: "/v1/api-keys/*/revoke", KeyPrefix: k.Prefix, Authenticated: true}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(e.s.ReleaseHolds)
	answers := make(chan int, 2)
	go func() { answers <- e.do("POST", "/v1/api-keys/"+b.ID+"/revoke", tokA, nil).status }()
	go func() { answers <- e.do("POST", "/v1/api-keys/"+a.ID+"/revoke", tokB, nil).status }()
	if !eventually(t, 10*time.Second, func() bool {
		return strings.Count(e.log.String(), "/revoke: authenticated") == 2
	}) {
		t.Fatalf("the revokes were not both held:\n%s", e.log)
	}
	e.s.ReleaseHolds()
	got := []int{<-answers, <-answers}
	slices.Sort(got)
	if !slices.Equal(got, []int{200, 401}) {
		t.Fatalf("answers %v, want one 200 and one 401", got)
	}
	if e.getKey(a.ID).Active() == e.getKey(b.ID).Active() {
		t.Fatal("both keys or neither ended revoked")
	}
}

// TestNoAnswerAfterRevokeUnderLoad revokes a key that several clients are
// using: no request sent after the revoke's answer is accepted, and every
// 200 has its log entry.
func TestNoAnswerAfterRevokeUnderLoad(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.admin, "victim", "stock:read")
	var revoked atomic.Bool
	var okAfter, ok200, refused atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := revoked.Load()
				status, ok := e.callStock(tok)
				if !ok {
					return
				}
				switch status {
				case 200:
					ok200.Add(1)
					if after {
						okAfter.Add(1)
					}
				case 401:
					refused.Add(1)
				}
			}
		}()
	}
	if !eventually(t, 10*time.Second, func() bool { return ok200.Load() >= 50 }) {
		t.Fatal("the victim key made no calls")
	}
	e.want(e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil), 200, "")
	revoked.Store(true)
	if !eventually(t, 10*time.Second, func() bool { return refused.Load() >= 20 }) {
		t.Fatal("the revoked key was not refused")
	}
	close(stop)
	wg.Wait()
	if n := okAfter.Load(); n != 0 {
		t.Fatalf("%d requests with the key sent after the revoke's answer were accepted", n)
	}
	var logged int64
	if err := e.s.db.QueryRow(`SELECT count(*) FROM execution_log WHERE key_id = ? AND status = 200`, k.ID).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	if logged != ok200.Load() {
		t.Fatalf("%d answers 200, %d log entries for the key", ok200.Load(), logged)
	}
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 401, client.CodeUnauthenticated)
}

// A revoked key that keeps calling (a forgotten place) is refused from the
// cache: no bcrypt, no database read per call.
func TestRevokedKeyCostsNoBcrypt(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.admin, "forgotten", "stock:read")
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	e.want(e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil), 200, "")
	before := e.s.bcryptCalls.Load()
	for range 5 {
		e.want(e.do("GET", "/v1/stock-levels", tok, nil), 401, client.CodeUnauthenticated)
	}
	if got := e.s.bcryptCalls.Load() - before; got != 0 {
		t.Fatalf("%d bcrypt comparisons for 5 calls of a revoked key seen before, want 0", got)
	}
}
