package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"golang.org/x/crypto/bcrypt"
)

// env is one emulator under test, reached through real HTTP.
type env struct {
	t      *testing.T
	s      *Server
	ts     *httptest.Server
	dbPath string
	log    *syncBuffer

	admin, member           client.User
	adminToken, memberToken string // keys:manage keys of each
	adminKey, memberKey     client.APIKey
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newEnv starts an emulator on a fresh SQLite file with an admin, a member
// (holding stock:read, reports:read, keys:manage) and a management key each.
func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, dbPath: filepath.Join(t.TempDir(), "bos.db"), log: &syncBuffer{}}
	cfg := Config{DBPath: e.dbPath, BcryptCost: bcrypt.MinCost, DevEndpoints: true, Logger: e.log}
	for _, m := range mod {
		m(&cfg)
	}
	e.start(cfg)
	ctx := context.Background()
	var err error
	if e.admin, err = e.s.CreateUser(ctx, "ana@example.com", "admin", nil); err != nil {
		t.Fatal(err)
	}
	if e.member, err = e.s.CreateUser(ctx, "ben@example.com", "member", []string{"stock:read", "reports:read", "keys:manage"}); err != nil {
		t.Fatal(err)
	}
	e.adminToken, e.adminKey = e.mint(e.admin, "admin mgmt", "keys:manage")
	e.memberToken, e.memberKey = e.mint(e.member, "member mgmt", "keys:manage")
	return e
}

func (e *env) start(cfg Config) {
	e.t.Helper()
	s, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
	e.ts = httptest.NewServer(s.Handler())
	e.t.Cleanup(e.stop)
}

// stop is safe to call twice: restart tests stop early, Cleanup stops again.
func (e *env) stop() {
	e.ts.Close()
	if err := e.s.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
}

func (e *env) mint(u client.User, name string, scopes ...string) (string, client.APIKey) {
	e.t.Helper()
	p, k, err := e.s.MintKey(context.Background(), u.ID, name, scopes, time.Time{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p, k
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) errCode() string {
	var eb client.ErrorBody
	json.Unmarshal(r.body, &eb)
	return eb.Error.Code
}

func (r reply) errMessage() string {
	var eb client.ErrorBody
	json.Unmarshal(r.body, &eb)
	return eb.Error.Message
}

// callStock makes one automation call and returns its status, from any
// goroutine: a failure goes to t.Error, since only the test's own goroutine
// may call t.Fatal.
func (e *env) callStock(token string) (status int, ok bool) {
	req, _ := http.NewRequest("GET", e.ts.URL+"/v1/stock-levels", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Error(err)
		return 0, false
	}
	resp.Body.Close()
	return resp.StatusCode, true
}

// do sends one request as JSON; extra holds header name/value pairs (an
// empty value drops the header; "Host" sets the request's Host).
func (e *env) do(method, path, token string, body any, extra ...string) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// As the harness and plana send them; dev endpoints answer nothing else.
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(extra); i += 2 {
		switch {
		case extra[i] == "Host":
			req.Host = extra[i+1]
		case extra[i+1] == "":
			req.Header.Del(extra[i])
		default:
			req.Header.Set(extra[i], extra[i+1])
		}
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") == "" || !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		e.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	if resp.StatusCode >= 400 {
		var eb client.ErrorBody
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" || eb.Error.RequestID != resp.Header.Get("X-Request-Id") {
			e.t.Errorf("%s %s: %d with a bad error body %s", method, path, resp.StatusCode, b)
		}
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) want(r reply, status int, code string) {
	e.t.Helper()
	if r.status != status || (code != "" && r.errCode() != code) {
		e.t.Fatalf("got %d %s, want %d %s: %s", r.status, r.errCode(), status, code, r.body)
	}
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.s.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) createKey(token string, req client.CreateKeyRequest, extra ...string) (reply, client.CreateKeyResponse) {
	e.t.Helper()
	r := e.do("POST", "/v1/api-keys", token, req, extra...)
	var resp client.CreateKeyResponse
	if r.status < 300 {
		resp = decode[client.CreateKeyResponse](e.t, r)
	}
	return r, resp
}

func (e *env) getKey(id string) client.APIKey {
	e.t.Helper()
	r := e.do("GET", "/v1/api-keys/"+id, e.adminToken, nil)
	e.want(r, 200, "")
	return decode[client.APIKey](e.t, r)
}

func (e *env) logEntries(query string) []client.ExecutionLogEntry {
	e.t.Helper()
	r := e.do("GET", "/v1/execution-log"+query, e.adminToken, nil)
	e.want(r, 200, "")
	return decode[client.ExecutionLogResponse](e.t, r).Entries
}

// awaitHeld waits until the log says a request is held at line ("holding
// GET /v1/api-keys: authenticated"), and fails the test as what ("the
// list") was not held when it does not within 10 s.
func (e *env) awaitHeld(line, what string) {
	e.t.Helper()
	if !eventually(e.t, 10*time.Second, func() bool { return strings.Contains(e.log.String(), line) }) {
		e.t.Fatalf("%s was not held:\n%s", what, e.log)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
