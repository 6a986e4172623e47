package emulator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// sendUntilHeld sends a request, waits for the log to say it is held, then
// abandons it the way a killed client does, and returns once the emulator
// has logged how the request ended.
func (e *env) sendUntilHeld(method, path, token, body, wantLog string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(headerIdempotent, "idem-held")
	errc := make(chan error, 1)
	go func() {
		resp, err := e.ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if !eventually(e.t, 10*time.Second, func() bool { return strings.Contains(e.log.String(), wantLog) }) {
		e.t.Fatalf("no %q in the log:\n%s", wantLog, e.log)
	}
	select {
	case err := <-errc:
		e.t.Fatalf("the held request was answered (%v)", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		e.t.Fatalf("abandoned request: %v, want context.Canceled", err)
	}
	if !eventually(e.t, 10*time.Second, func() bool { return strings.Contains(e.log.String(), method+" "+path+" gone") }) {
		e.t.Fatalf("the emulator did not log the end of the held request:\n%s", e.log)
	}
}

func TestHoldAfterHandlingLosesTheAnswer(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/_emulator/holds", "", Hold{Method: "POST", Path: "/v1/api-keys", After: true})
	e.want(r, 200, "")
	before := e.count("api_keys")

	e.sendUntilHeld("POST", "/v1/api-keys", e.adminToken, `{"name":"held","scopes":["stock:read"]}`, "holding POST /v1/api-keys: handled")
	// The server acted although the client never read the answer.
	if got := e.count("api_keys"); got != before+1 {
		t.Fatalf("%d keys, want %d: the held create was not carried out", got, before+1)
	}
	// The hold is used up: the retry gets the idempotent replay at once.
	r, resp := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "held", Scopes: []string{"stock:read"}}, headerIdempotent, "idem-held")
	e.want(r, 200, "")
	if r.header.Get(headerReplayed) != "true" || resp.Plaintext != nil {
		t.Fatalf("replay: %s %s", r.header, r.body)
	}
}

func TestHoldOnArrivalMatchesByKey(t *testing.T) {
	e := newEnv(t)
	if err := e.s.ArmHold(Hold{Method: "GET", Path: "/v1/*", ExceptKeyPrefix: e.adminKey.Prefix}); err != nil {
		t.Fatal(err)
	}
	// The excepted key passes untouched.
	e.want(e.do("GET", "/v1/me", e.adminToken, nil), 200, "")
	logged := len(e.logEntries("?key_id=" + e.memberKey.ID))

	e.sendUntilHeld("GET", "/v1/me", e.memberToken, "", "holding GET /v1/me: arrived")
	// Held before handling: the request never reached the API.
	if got := len(e.logEntries("?key_id=" + e.memberKey.ID)); got != logged {
		t.Fatalf("%d execution-log entries for the member key, want %d", got, logged)
	}
	e.want(e.do("GET", "/v1/me", e.memberToken, nil), 200, "")
}

func TestHoldRefusesBadSpecs(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{`{"path":"/v1/me"}`, `{"method":"GET","path":"v1"}`, `{"method":"GET","path":"/v1/[" }`, `{"method":"GET","path":"/v1/me","colour":"red"}`} {
		e.want(e.do("POST", "/_emulator/holds", "", body), 400, client.CodeInvalidRequest)
	}
	e.want(e.do("GET", "/_emulator/holds", "", nil), 405, "")
	off := newEnv(t, func(c *Config) { c.DevEndpoints = false })
	off.want(off.do("POST", "/_emulator/holds", "", Hold{Method: "GET", Path: "/v1/me"}), 404, client.CodeNotFound)
	off.want(off.do("GET", "/_emulator/faults", "", nil), 404, client.CodeNotFound)
}

func TestFaultCounts(t *testing.T) {
	faults, err := ParseFaults("rate=0.5,kinds=500+429bad", 3)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Faults = faults })
	// The same seed draws the same sequence: the test knows the answer.
	expected := newFaultInjector(faults)
	want := map[string]int64{}
	const n = 60
	for i := 0; i < n; i++ {
		if k := expected.draw(); k != "" {
			want[k]++
		}
		e.do("GET", "/v1/stock-levels", e.adminToken, nil)
	}
	// Dev endpoints are not /v1/: neither drawn for nor counted.
	got := decode[FaultCounts](t, e.do("GET", "/_emulator/faults", "", nil))
	if got.Requests != n || got.Injected["500"] != want["500"] || got.Injected["429bad"] != want["429bad"] || len(got.Injected) != len(want) {
		t.Fatalf("counts %+v, want %d requests and %v", got, n, want)
	}
	if want["500"] == 0 || want["429bad"] == 0 {
		t.Fatalf("seed 3 drew %v: pick a seed that draws both kinds", want)
	}
	e.want(e.do("POST", "/_emulator/faults", "", nil), 405, "")
}

func TestReleaseLetsHeldRequestsGoOn(t *testing.T) {
	e := newEnv(t)
	e.want(e.do("POST", "/_emulator/holds", "", Hold{Method: "POST", Path: "/v1/api-keys/*/revoke"}), 200, "")
	_, victim := e.mint(e.admin, "victim", "stock:read")
	answered := make(chan reply, 1)
	go func() { answered <- e.do("POST", "/v1/api-keys/"+victim.ID+"/revoke", e.adminToken, nil) }()
	e.awaitHeld("holding POST /v1/api-keys/"+victim.ID+"/revoke: arrived", "the revoke")
	// Held on arrival: not revoked yet.
	if k := e.getKey(victim.ID); !k.Active() {
		t.Fatalf("revoked while held: %+v", k)
	}
	e.want(e.do("DELETE", "/_emulator/holds", "", nil), 204, "")
	r := <-answered
	e.want(r, 200, "")
	if k := e.getKey(victim.ID); k.Active() {
		t.Fatalf("still active after the released revoke: %+v", k)
	}
}
