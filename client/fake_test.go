package client

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// arrival is one request as the fake server received it.
type arrival struct {
	at     time.Time
	method string
	path   string
	query  url.Values
	auth   string // the bearer token presented
	idem   string
	body   []byte
}

// fakeAPI records every arrival and lets the test script each answer by its
// 0-based arrival number.
type fakeAPI struct {
	mu       sync.Mutex
	arrivals []arrival
}

func newFakeAPI(t *testing.T, answer func(n int, a arrival, w http.ResponseWriter)) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a := arrival{at: time.Now(), method: r.Method, path: r.URL.EscapedPath(), query: r.URL.Query(),
			auth: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "),
			idem: r.Header.Get("Idempotency-Key"), body: body}
		f.mu.Lock()
		n := len(f.arrivals)
		f.arrivals = append(f.arrivals, a)
		f.mu.Unlock()
		w.Header().Set("X-Request-Id", "req_test")
		answer(n, a, w)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) got() []arrival {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]arrival(nil), f.arrivals...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg, RequestID: "req_body"}})
}

// fastClient retries quickly, so a test's duration is the waits it asserts.
func fastClient(t *testing.T, url string, opts ...Option) *Client {
	t.Helper()
	c, err := New(url, append([]Option{
		WithKeys(testKey("AAAAAAAA")),
		WithBackoff(time.Millisecond, 5*time.Millisecond),
		WithRetry(4, 20*time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sampleKey(id string) APIKey {
	return APIKey{ID: id, Name: "Nightly stock sync (2025)", Prefix: "pa_live_AAAAAAAA", Scopes: []string{"stock:read"},
		Status: StatusActive, CreatedAt: time.Date(2025, 1, 10, 9, 0, 0, 0, time.UTC),
		CreatedBy: User{ID: "usr_1", Email: "ana@example.com"}}
}

// sampleMe is a whole /v1/me answer, for the key with id keyID.
func sampleMe(keyID string) Me {
	return Me{User: User{ID: "usr_1", Email: "ana@example.com", Role: "admin"},
		Workspace: Workspace{ID: "ws_1", Name: "Acme"}, Key: sampleKey(keyID)}
}
