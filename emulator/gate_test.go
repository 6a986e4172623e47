package emulator

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

func TestKeyGateRevokeWaitsForRequestsInFlight(t *testing.T) {
	g := newKeyGate()
	if !g.enter("key_a") || !g.enter("key_b") {
		t.Fatal("an unrevoked key was refused")
	}
	done := make(chan struct{})
	go func() {
		g.revoke("key_a", 0)
		close(done)
	}()
	// Once the mark is set the key is refused, while the revoke still
	// waits for the request already in.
	if !eventually(t, 5*time.Second, func() bool {
		if g.enter("key_a") {
			g.leave("key_a")
			return false
		}
		return true
	}) {
		t.Fatal("a key being revoked was still let in")
	}
	select {
	case <-done:
		t.Fatal("the revoke went ahead with a request of the key in flight")
	default:
	}
	g.leave("key_b")
	select {
	case <-done:
		t.Fatal("another key's request ended the revoke's wait")
	default:
	}
	g.leave("key_a")
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the revoke did not go ahead once the key's last request left")
	}
	if g.enter("key_a") {
		t.Fatal("a revoked key was let in")
	}
	// A key revoking itself waits only for its other requests.
	g.enter("key_c")
	self := make(chan struct{})
	go func() { g.revoke("key_c", 1); close(self) }()
	select {
	case <-self:
	case <-time.After(5 * time.Second):
		t.Fatal("a key revoking itself waited for its own request")
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
