package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	tests := []struct {
		in, want string // want "" for an error
	}{
		{"http://127.0.0.1:8787", "http://127.0.0.1:8787"},
		{"https://api.bos.example/", "https://api.bos.example"},
		{"https://api.bos.example/base/", "https://api.bos.example/base"},
		{"127.0.0.1:8787", ""},
		{"ftp://example.com", ""},
		{"http://", ""},
		{"", ""},
	}
	for _, tt := range tests {
		c, err := New(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("New(%q) accepted it", tt.in)
		case tt.want == "" && !strings.Contains(err.Error(), "http(s)://host"):
			t.Errorf("New(%q) error %q does not say what a URL looks like", tt.in, err)
		case tt.want != "" && err != nil:
			t.Errorf("New(%q) error = %v", tt.in, err)
		case tt.want != "" && c.BaseURL() != tt.want:
			t.Errorf("New(%q).BaseURL() = %q, want %q", tt.in, c.BaseURL(), tt.want)
		}
	}
}

func TestRequestShape(t *testing.T) {
	api, srv := newFakeAPI(t, func(_ int, a arrival, w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, sampleKey("key_1"))
	})
	key := testKey("SHAPE000")
	c := fastClient(t, srv.URL+"/base", WithKeys(key), WithUserAgent("stock-sync/1.4"))
	var seenUA, seenAccept string
	c.httpClient.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seenUA, seenAccept = r.Header.Get("User-Agent"), r.Header.Get("Accept")
		return http.DefaultTransport.RoundTrip(r)
	})
	if _, err := c.GetKey(context.Background(), "key/../1"); err != nil {
		t.Fatal(err)
	}
	got := api.got()[0]
	if got.path != "/base/v1/api-keys/key%2F..%2F1" || got.auth != key || got.method != http.MethodGet {
		t.Errorf("sent %s %s with the wrong key or path", got.method, got.path)
	}
	if seenUA != "stock-sync/1.4" || seenAccept != "application/json" {
		t.Errorf("User-Agent %q, Accept %q", seenUA, seenAccept)
	}
	if _, err := c.GetKey(context.Background(), ""); err == nil {
		t.Error("GetKey(\"\") sent a request for the key list")
	}
	if _, err := c.RevokeKey(context.Background(), ""); err == nil {
		t.Error("RevokeKey(\"\") was accepted")
	}
	if _, err := c.Do(context.Background(), Request{Method: http.MethodPost, Path: "/v1/api-keys", IdempotencyKey: strings.Repeat("k", 256)}, nil); err == nil || !strings.Contains(err.Error(), "255") {
		t.Errorf("a 256-character Idempotency-Key: error = %v, want one naming the limit", err)
	}
	if n := len(api.got()); n != 1 {
		t.Errorf("%d arrivals, want 1: refused calls must not reach the server", n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestListKeysFollowsPages(t *testing.T) {
	pages := map[string]ListKeysResponse{
		"":   {APIKeys: []APIKey{sampleKey("key_1"), sampleKey("key_2")}, NextPageToken: "t2"},
		"t2": {APIKeys: []APIKey{sampleKey("key_3"), sampleKey("key_4")}, NextPageToken: "t3"},
		"t3": {APIKeys: []APIKey{sampleKey("key_5")}, NextPageToken: ""},
	}
	api, srv := newFakeAPI(t, func(_ int, a arrival, w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, pages[strings.Join(a.query["page_token"], ",")])
	})
	c := fastClient(t, srv.URL)
	keys, err := c.ListKeys(context.Background(), ListKeysOptions{Status: StatusAll, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if want := []string{"key_1", "key_2", "key_3", "key_4", "key_5"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	got := api.got()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, tok := range []string{"", "t2", "t3"} {
		q := got[i].query
		if q.Get("status") != "all" || q.Get("page_size") != "2" || q.Get("page_token") != tok {
			t.Errorf("request %d query = %v, want status=all page_size=2 page_token=%q", i, q, tok)
		}
	}
}

func TestListKeysPagesStopsOnCallbackError(t *testing.T) {
	api, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, ListKeysResponse{APIKeys: []APIKey{sampleKey("key_1")}, NextPageToken: "more"})
	})
	stop := errors.New("enough")
	err := fastClient(t, srv.URL).ListKeysPages(context.Background(), ListKeysOptions{}, func([]APIKey) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("error = %v, want the callback's", err)
	}
	if q := api.got()[0].query; len(q) != 0 {
		t.Errorf("default options sent query %v, want none", q)
	}
	if n := len(api.got()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestExecutionLog(t *testing.T) {
	entry := func(i int) ExecutionLogEntry {
		return ExecutionLogEntry{ID: "exe_" + strconv.Itoa(i), At: time.Date(2025, 11, 24, 2, 0, 0, 0, time.UTC).Add(-time.Duration(i) * time.Minute),
			KeyID: "key_1", KeyPrefix: "pa_live_AAAAAAAA", Method: "GET", Path: "/v1/stock-levels", Status: 200}
	}
	// Three pages of two entries, newest first.
	answer := func(_ int, a arrival, w http.ResponseWriter) {
		n := 0
		if tok := a.query.Get("page_token"); tok != "" {
			n, _ = strconv.Atoi(tok)
		}
		next := ""
		if n+2 < 6 {
			next = strconv.Itoa(n + 2)
		}
		writeJSON(w, http.StatusOK, ExecutionLogResponse{Entries: []ExecutionLogEntry{entry(n), entry(n + 1)}, NextPageToken: next})
	}
	since := time.Date(2025, 11, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))
	until := time.Date(2025, 11, 25, 12, 30, 0, 500, time.UTC)
	tests := []struct {
		name     string
		opts     ExecutionLogOptions
		entries  int
		requests int
	}{
		{"all pages", ExecutionLogOptions{}, 6, 3},
		{"limit inside the second page", ExecutionLogOptions{Limit: 3}, 3, 2},
		{"limit on a page boundary", ExecutionLogOptions{Limit: 2}, 2, 1},
		{"limit above the total", ExecutionLogOptions{Limit: 50}, 6, 3},
		{"filters", ExecutionLogOptions{KeyID: "key_1", KeyPrefix: "pa_live_AAAAAAAA", Since: since, Until: until, PageSize: 2}, 6, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, srv := newFakeAPI(t, answer)
			got, err := fastClient(t, srv.URL).ExecutionLog(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.entries {
				t.Errorf("%d entries, want %d", len(got), tt.entries)
			}
			for i, e := range got {
				if e.ID != "exe_"+strconv.Itoa(i) {
					t.Errorf("entry %d is %s: order or pages lost", i, e.ID)
				}
			}
			reqs := api.got()
			if len(reqs) != tt.requests {
				t.Errorf("%d requests, want %d", len(reqs), tt.requests)
			}
			for _, r := range reqs {
				if r.path != "/v1/execution-log" {
					t.Errorf("path %s", r.path)
				}
				q := r.query
				if tt.opts.KeyID != "" {
					want := map[string]string{"key_id": "key_1", "key_prefix": "pa_live_AAAAAAAA",
						"since": "2025-10-31T23:00:00Z", "until": "2025-11-25T12:30:00.0000005Z", "page_size": "2"}
					for k, v := range want {
						if q.Get(k) != v {
							t.Errorf("%s = %q, want %q", k, q.Get(k), v)
						}
					}
				} else if len(q) > 1 || (len(q) == 1 && q.Get("page_token") == "") {
					t.Errorf("query %v: only page_token expected", q)
				}
			}
		})
	}
}

func TestTypedErrors(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		sentinel error
		code     string
		msg      string
	}{
		{401, `{"error":{"code":"unauthenticated","message":"missing, malformed, unknown or revoked API key","request_id":"req_b"}}`, ErrUnauthenticated, CodeUnauthenticated, "revoked API key"},
		{403, `{"error":{"code":"forbidden","message":"needs keys:manage","request_id":"req_b"}}`, ErrForbidden, CodeForbidden, "keys:manage"},
		{404, `{"error":{"code":"not_found","message":"no API key with that id","request_id":"req_b"}}`, ErrNotFound, CodeNotFound, "no API key"},
		{409, `{"error":{"code":"conflict","message":"in flight","request_id":"req_b"}}`, ErrConflict, CodeConflict, "in flight"},
		{429, `{"error":{"code":"rate_limited","message":"slow down","request_id":"req_b"}}`, ErrRateLimited, CodeRateLimited, "slow down"},
		{422, `{"error":{"code":"validation_failed","message":"name must not be blank","request_id":"req_b"}}`, nil, CodeValidationFailed, "name must not be blank"},
		// A proxy's HTML page: still an *APIError, with the status text.
		{502, `<html>bad gateway</html>`, nil, "", "Bad Gateway"},
	}
	sentinels := []error{ErrUnauthenticated, ErrForbidden, ErrNotFound, ErrConflict, ErrRateLimited}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			_, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			_, err := fastClient(t, srv.URL, WithRetry(1, time.Second)).GetKey(context.Background(), "key_1")
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if apiErr.StatusCode != tt.status || apiErr.Code != tt.code || apiErr.RequestID != "req_test" {
				t.Errorf("APIError = %+v, want status %d, code %q, request id from X-Request-Id", apiErr, tt.status, tt.code)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) != (s == tt.sentinel) {
					t.Errorf("errors.Is(err, %v) = %v", s, !(s == tt.sentinel))
				}
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "req_test") || !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
				t.Errorf("Error() = %q, want the message, status and request id", err)
			}
		})
	}
}

func TestRequestIDFallsBackToTheBody(t *testing.T) {
	_, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		w.Header().Del("X-Request-Id")
		writeErr(w, http.StatusNotFound, CodeNotFound, "nope")
	})
	_, err := fastClient(t, srv.URL).GetKey(context.Background(), "key_1")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.RequestID != "req_body" {
		t.Errorf("error = %v, want request id req_body", err)
	}
}

func TestErrorsRedactEchoedKeys(t *testing.T) {
	key := testKey("ECHOECHO")
	_, srv := newFakeAPI(t, func(_ int, a arrival, w http.ResponseWriter) {
		// A careless server quoting the key it was given.
		writeErr(w, http.StatusUnauthorized, CodeUnauthenticated, "key "+a.auth+" is revoked")
	})
	_, err := fastClient(t, srv.URL, WithKeys(key)).Me(context.Background())
	if err == nil {
		t.Fatal("Me() succeeded")
	}
	if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), key[16:]) {
		t.Fatal("the error carries the plaintext key")
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || strings.Contains(apiErr.Message, key[16:]) {
		t.Fatal("APIError.Message carries the plaintext key")
	}
	if !strings.Contains(err.Error(), "pa_live_ECHOECHO…") {
		t.Errorf("Error() = %q, want the key's prefix in place of the key", err)
	}
}

// A server's error message is its own words: shown escaped, it can neither
// act on the terminal nor forge a line.
func TestErrorsEscapeTheServersWords(t *testing.T) {
	_, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		writeErr(w, http.StatusConflict, "conflict\u202e", "name taken\x1b[2J\nFAKE-LINE \u009b")
	})
	_, err := fastClient(t, srv.URL).GetKey(context.Background(), "key_1")
	if err == nil {
		t.Fatal("GetKey succeeded")
	}
	want := `name taken\x1b[2J\x0aFAKE-LINE \u009b (HTTP 409 conflict\u202e`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Error() = %q, want it to hold %q", err, want)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Message != "name taken\x1b[2J\nFAKE-LINE \u009b" {
		t.Errorf("APIError.Message = %q, want the server's words as they were", apiErr.Message)
	}
}

func TestFallbackKeys(t *testing.T) {
	newKey, oldKey := testKey("NEWNEWNE"), testKey("OLDOLDOL")
	tests := []struct {
		name      string
		newAnswer int // what the server answers the new key; the old one gets 200
		keys      []string
		ok        bool
	}{
		{"401 moves on to the next key", http.StatusUnauthorized, []string{newKey, oldKey}, true},
		{"403 does not move on", http.StatusForbidden, []string{newKey, oldKey}, false},
		{"404 does not move on", http.StatusNotFound, []string{newKey, oldKey}, false},
		{"500 does not move on", http.StatusInternalServerError, []string{newKey, oldKey}, false},
		{"401 with no other key fails", http.StatusUnauthorized, []string{newKey}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, srv := newFakeAPI(t, func(_ int, a arrival, w http.ResponseWriter) {
				if a.auth == newKey {
					writeErr(w, tt.newAnswer, "x", "refused")
					return
				}
				writeJSON(w, http.StatusOK, sampleMe("key_old"))
			})
			c := fastClient(t, srv.URL, WithKeys(tt.keys...), WithRetry(1, time.Second))
			me, err := c.Me(context.Background())
			if tt.ok != (err == nil) {
				t.Fatalf("Me() error = %v, want ok %v", err, tt.ok)
			}
			if tt.ok && me.Key.ID != "key_old" {
				t.Errorf("answer is not the old key's")
			}
			var used []string
			for _, a := range api.got() {
				used = append(used, PrefixOf(a.auth))
			}
			want := []string{"pa_live_NEWNEWNE"}
			if tt.ok {
				want = append(want, "pa_live_OLDOLDOL")
			}
			if !reflect.DeepEqual(used, want) {
				t.Errorf("keys presented in order: %v, want %v", used, want)
			}
			var apiErr *APIError
			if !tt.ok && (!errors.As(err, &apiErr) || apiErr.StatusCode != tt.newAnswer) {
				t.Errorf("error = %v, want the new key's %d", err, tt.newAnswer)
			}
		})
	}
}

func TestFallbackAllKeysRefused(t *testing.T) {
	keys := []string{testKey("KEYONE00"), testKey("KEYTWO00"), testKey("KEYTHREE")}
	api, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		writeErr(w, http.StatusUnauthorized, CodeUnauthenticated, "revoked")
	})
	_, err := fastClient(t, srv.URL, WithKeys(keys...)).Me(context.Background())
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("error = %v, want ErrUnauthenticated", err)
	}
	got := api.got()
	if len(got) != len(keys) {
		t.Fatalf("%d requests, want one per key and no retries", len(got))
	}
	for i, a := range got {
		if a.auth != keys[i] {
			t.Errorf("request %d presented the wrong key", i)
		}
	}
}

func TestServerNow(t *testing.T) {
	// The server's clock is far from ours, as with a laptop whose clock is off.
	serverClock := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	_, srv := newFakeAPI(t, func(n int, _ arrival, w http.ResponseWriter) {
		w.Header().Set("Date", serverClock.Add(time.Duration(n)*time.Hour).Format(http.TimeFormat))
		if n == 2 {
			writeErr(w, http.StatusNotFound, CodeNotFound, "no")
			return
		}
		writeJSON(w, http.StatusOK, sampleMe("key_1"))
	})
	c := fastClient(t, srv.URL)
	if _, ok := c.ServerNow(); ok {
		t.Fatal("ServerNow() ok before any answer")
	}
	for n := range 3 {
		c.Me(context.Background())
		now, ok := c.ServerNow()
		want := serverClock.Add(time.Duration(n) * time.Hour)
		if !ok || now.Before(want) || now.After(want.Add(2*time.Second)) {
			t.Errorf("after answer %d: ServerNow() = %v, %v; want %v (error answers count too)", n, now, ok, want)
		}
		if now.Location() != time.UTC {
			t.Errorf("ServerNow() in %v, want UTC", now.Location())
		}
	}
}

func TestCreateKey(t *testing.T) {
	plaintext := testKey("CREATED0")
	tests := []struct {
		name          string
		status        int
		replayHeader  bool
		withPlaintext bool
		wantReplayed  bool
	}{
		{"created", http.StatusCreated, false, true, false},
		{"replayed", http.StatusOK, true, false, true},
		// A replay without the header is still recognised by the null plaintext.
		{"replayed without the header", http.StatusOK, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
				resp := CreateKeyResponse{APIKey: sampleKey("key_new")}
				if tt.withPlaintext {
					resp.Plaintext = &plaintext
				}
				if tt.replayHeader {
					w.Header().Set("Idempotent-Replayed", "true")
				}
				writeJSON(w, tt.status, resp)
			})
			c := fastClient(t, srv.URL)
			req := CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read"}}
			got, err := c.CreateKey(context.Background(), req, "idem_abc")
			if err != nil {
				t.Fatal(err)
			}
			if got.Replayed != tt.wantReplayed || got.APIKey.ID != "key_new" {
				t.Errorf("Replayed = %v, id %s; want %v, key_new", got.Replayed, got.APIKey.ID, tt.wantReplayed)
			}
			if (got.Plaintext == plaintext) != tt.withPlaintext || (!tt.withPlaintext && got.Plaintext != "") {
				t.Errorf("Plaintext present = %v, want %v", got.Plaintext != "", tt.withPlaintext)
			}
			a := api.got()[0]
			if a.method != http.MethodPost || a.path != "/v1/api-keys" || a.idem != "idem_abc" {
				t.Errorf("sent %s %s with Idempotency-Key %q", a.method, a.path, a.idem)
			}
			if want := `{"name":"Nightly stock sync (2026)","scopes":["stock:read"]}`; string(a.body) != want {
				t.Errorf("body %s, want %s", a.body, want)
			}
		})
	}
}

func TestCreateKeyNeedsAnIdempotencyKey(t *testing.T) {
	api, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		writeJSON(w, http.StatusCreated, CreateKeyResponse{})
	})
	_, err := fastClient(t, srv.URL).CreateKey(context.Background(), CreateKeyRequest{Name: "n", Scopes: []string{"a:b"}}, "")
	if err == nil || !strings.Contains(err.Error(), "idempotency key") {
		t.Errorf("error = %v, want one about the idempotency key", err)
	}
	if n := len(api.got()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

func TestRevokeKeyIsRetriedSafely(t *testing.T) {
	api, srv := newFakeAPI(t, func(n int, _ arrival, w http.ResponseWriter) {
		if n == 0 {
			hangUp(t, w)
			return
		}
		k := sampleKey("key_1")
		k.Status = StatusRevoked
		writeJSON(w, http.StatusOK, k)
	})
	k, err := fastClient(t, srv.URL).RevokeKey(context.Background(), "key_1")
	if err != nil {
		t.Fatal(err)
	}
	if k.Active() {
		t.Error("the revoked key reads as active")
	}
	got := api.got()
	if len(got) != 2 || got[1].path != "/v1/api-keys/key_1/revoke" || got[1].method != http.MethodPost || got[1].idem == "" {
		t.Errorf("revoke was not retried as an idempotent POST: %d requests", len(got))
	}
}

func TestNewIdempotencyKey(t *testing.T) {
	a, b := NewIdempotencyKey(), NewIdempotencyKey()
	if a == b || len(a) > 255 || !strings.HasPrefix(a, "idem_") || len(a) < 20 {
		t.Errorf("NewIdempotencyKey() = %q, %q: want distinct, short, random", a, b)
	}
}

// A redirect is never followed: the key would go with it, to another port,
// scheme or host.
func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere, other := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, sampleMe("key_1"))
	})
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			api, srv := newFakeAPI(t, func(_ int, a arrival, w http.ResponseWriter) {
				w.Header().Set("Location", other.URL+a.path)
				w.WriteHeader(status)
			})
			key := testKey("REDIRECT")
			c := fastClient(t, srv.URL, WithKeys(key), WithHTTPClient(&http.Client{}))
			_, err := c.Me(context.Background())
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
				t.Fatalf("Me() error = %v, want the %d as an *APIError", err, status)
			}
			if !strings.Contains(err.Error(), "does not follow redirects") || !strings.Contains(err.Error(), other.URL) {
				t.Errorf("error %q does not say where the redirect pointed and why it was not followed", err)
			}
			if n := len(api.got()); n != 1 {
				t.Errorf("%d requests, want 1: a redirect is not worth a retry", n)
			}
		})
	}
	if n := len(elsewhere.got()); n != 0 {
		t.Errorf("%d requests reached the redirect's target, want 0", n)
	}
}
