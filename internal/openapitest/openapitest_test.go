package openapitest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// spyT collects failures instead of failing, to test that a mismatch is caught.
type spyT struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (s *spyT) Helper() {}

func (s *spyT) Errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, format)
	for _, a := range args {
		if str, ok := a.(string); ok {
			s.errs[len(s.errs)-1] += " " + str
		}
	}
}

func (s *spyT) failures() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

const testPlaintext = "pa_live_AB7K2XYZ" + "s3cr3ts3cr3ts3cr3ts3cr3ts3cr3tXX" + "Ab12Cd"

func apiKeyJSON() map[string]any {
	return map[string]any{
		"id": "key_01JD2K9Q8W3XN5T7Y0ZB4C6V1M", "name": "Nightly stock sync (2025)", "description": "",
		"prefix": "pa_live_AB7K2XYZ", "scopes": []string{"stock:read"}, "status": "active",
		"created_at":   "2025-01-10T09:00:00Z",
		"created_by":   map[string]any{"id": "usr_1", "email": "ana@example.com", "role": "admin"},
		"last_used_at": nil, "revoked_at": nil, "revoked_by": nil,
	}
}

func errJSON(code string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": "m", "request_id": "req_1"}}
}

func exchange(method, path string, hdr http.Header, reqBody string, status int, respHdr http.Header, body any) Exchange {
	r := httptest.NewRequest(method, path, strings.NewReader(reqBody))
	if hdr == nil {
		hdr = http.Header{"Authorization": {"Bearer " + testPlaintext}}
	}
	r.Header = hdr
	if reqBody != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if respHdr == nil {
		respHdr = http.Header{}
	}
	respHdr.Set("Content-Type", "application/json")
	if respHdr.Get("X-Request-Id") == "-" {
		respHdr.Del("X-Request-Id")
	} else {
		respHdr.Set("X-Request-Id", "req_1")
	}
	respHdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	data, _ := json.Marshal(body)
	return Exchange{Request: r, RequestBody: []byte(reqBody), Status: status, Header: respHdr, Body: data}
}

func TestDocLoadsAndListsEveryOperation(t *testing.T) {
	d := Load(t)
	want := []string{"automationDelete", "automationGet", "automationPatch", "automationPost", "automationPut",
		"createApiKey", "getApiKey", "getMe", "listApiKeys", "listExecutionLog", "revokeApiKey"}
	if got := d.OperationIDs(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("OperationIDs() = %v, want %v", got, want)
	}
}

// The doc keeps to redocly's recommended rules that a reader of the doc
// notices: a licence, and a description for every tag an operation uses.
func TestDocHasLicenceAndTagDescriptions(t *testing.T) {
	spec := Load(t).Spec()
	if l := spec.Info.License; l == nil || l.Name == "" || l.Identifier != "Apache-2.0" {
		t.Errorf("info.license = %+v, want the project's Apache-2.0", l)
	}
	described := map[string]bool{}
	for _, tag := range spec.Tags {
		if strings.TrimSpace(tag.Description) == "" {
			t.Errorf("tag %q has no description", tag.Name)
		}
		described[tag.Name] = true
	}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			for _, tag := range op.Tags {
				if !described[tag] {
					t.Errorf("%s %s uses tag %q, which the doc does not declare", method, path, tag)
				}
			}
		}
	}
}

func TestCheck(t *testing.T) {
	withExtra := apiKeyJSON()
	withExtra["secret_hash"] = "x"
	noName := apiKeyJSON()
	delete(noName, "name")
	noDescription := apiKeyJSON()
	delete(noDescription, "description")
	leaky := apiKeyJSON()
	leaky["prefix"] = testPlaintext
	created := map[string]any{"api_key": apiKeyJSON(), "plaintext": testPlaintext}
	replayNotNull := map[string]any{"api_key": apiKeyJSON(), "plaintext": testPlaintext}
	replayOK := map[string]any{"api_key": apiKeyJSON(), "plaintext": nil}
	tooLong := strings.Repeat("x", 256)

	tests := []struct {
		name       string
		ex         Exchange
		op         string
		invalidReq bool
		problem    string // substring of a problem; "" for none
	}{
		{name: "valid get", ex: exchange("GET", "/v1/api-keys/key_01", nil, "", 200, nil, apiKeyJSON()), op: "getApiKey"},
		{name: "unknown field in a closed object", ex: exchange("GET", "/v1/api-keys/key_01", nil, "", 200, nil, withExtra), op: "getApiKey", problem: "secret_hash"},
		{name: "missing required field", ex: exchange("GET", "/v1/api-keys/key_01", nil, "", 200, nil, noName), op: "getApiKey", problem: "name"},
		{name: "description always present", ex: exchange("GET", "/v1/api-keys/key_01", nil, "", 200, nil, noDescription), op: "getApiKey", problem: "description"},
		{name: "description over 500 answered 422", ex: exchange("POST", "/v1/api-keys", nil, `{"name":"n","scopes":["a:b"],"description":"`+strings.Repeat("d", 501)+`"}`, 422, nil, errJSON("validation_failed")), op: "createApiKey", invalidReq: true},
		{name: "undocumented status", ex: exchange("GET", "/v1/api-keys/key_01", nil, "", 418, nil, errJSON("internal")), op: "getApiKey", problem: "status is not supported"},
		{name: "wrong error code for status", ex: exchange("GET", "/v1/api-keys/key_01", nil, "", 404, nil, errJSON("forbidden")), op: "getApiKey", problem: "answer 404"},
		{name: "missing X-Request-Id", ex: exchange("GET", "/v1/me", nil, "", 401, http.Header{"X-Request-Id": {"-"}}, errJSON("unauthenticated")), op: "getMe", problem: "X-Request-Id"},
		{name: "429 without Retry-After", ex: exchange("GET", "/v1/me", nil, "", 429, nil, errJSON("rate_limited")), op: "getMe", problem: "Retry-After"},
		{name: "429 with Retry-After", ex: exchange("GET", "/v1/me", nil, "", 429, http.Header{"Retry-After": {"2"}}, errJSON("rate_limited")), op: "getMe"},
		{name: "5xx range", ex: exchange("GET", "/v1/me", nil, "", 503, nil, errJSON("internal")), op: "getMe"},
		{name: "created", ex: exchange("POST", "/v1/api-keys", nil, `{"name":"n","scopes":["a:b"]}`, 201, nil, created), op: "createApiKey"},
		{name: "replay must have null plaintext", ex: exchange("POST", "/v1/api-keys", nil, `{"name":"n","scopes":["a:b"]}`, 200, http.Header{"Idempotent-Replayed": {"true"}}, replayNotNull), op: "createApiKey", problem: "plaintext"},
		{name: "replay needs its header", ex: exchange("POST", "/v1/api-keys", nil, `{"name":"n","scopes":["a:b"]}`, 200, nil, replayOK), op: "createApiKey", problem: "Idempotent-Replayed"},
		{name: "replay", ex: exchange("POST", "/v1/api-keys", nil, `{"name":"n","scopes":["a:b"]}`, 200, http.Header{"Idempotent-Replayed": {"true"}}, replayOK), op: "createApiKey"},
		{name: "no Authorization answered 401", ex: exchange("GET", "/v1/me", http.Header{}, "", 401, nil, errJSON("unauthenticated")), op: "getMe", invalidReq: true},
		{name: "no Authorization answered 200", ex: exchange("GET", "/v1/me", http.Header{}, "", 200, nil, map[string]any{}), op: "getMe", invalidReq: true, problem: "doc refuses"},
		{name: "page_size over the max answered 400", ex: exchange("GET", "/v1/api-keys?page_size=5000", nil, "", 400, nil, errJSON("invalid_request")), op: "listApiKeys", invalidReq: true},
		{name: "bad status filter accepted", ex: exchange("GET", "/v1/api-keys?status=bogus", nil, "", 200, nil, map[string]any{"api_keys": []any{}, "next_page_token": ""}), op: "listApiKeys", invalidReq: true, problem: "doc refuses"},
		{name: "idempotency key too long", ex: exchange("POST", "/v1/api-keys", http.Header{"Authorization": {"Bearer x"}, "Idempotency-Key": {tooLong}}, `{"name":"n","scopes":["a:b"]}`, 400, nil, errJSON("invalid_request")), op: "createApiKey", invalidReq: true},
		{name: "unknown body field", ex: exchange("POST", "/v1/api-keys", nil, `{"name":"n","scopes":["a:b"],"plaintext":"x"}`, 400, nil, errJSON("invalid_request")), op: "createApiKey", invalidReq: true},
		{name: "automation path", ex: exchange("GET", "/v1/stock-levels", nil, "", 200, nil, map[string]any{"ok": true}), op: "automationGet"},
		{name: "unknown path answered 404", ex: exchange("GET", "/v2/nothing", nil, "", 404, nil, errJSON("not_found")), invalidReq: true},
		{name: "unknown path answered 200", ex: exchange("GET", "/v2/nothing", nil, "", 200, nil, errJSON("not_found")), invalidReq: true, problem: "does not have"},
		{name: "plaintext in a wrong place is redacted", ex: exchange("GET", "/v1/api-keys/key_01", nil, "", 200, nil, leaky), op: "getApiKey", problem: "pa_live_AB7K2XYZ…"},
		{name: "dev endpoint skipped", ex: exchange("POST", "/_emulator/clock", nil, `{"advance":"24h"}`, 200, nil, map[string]any{"now": "x"})},
	}
	d := Load(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := d.Check(context.Background(), tt.ex)
			if res.OperationID != tt.op {
				t.Errorf("OperationID = %q, want %q", res.OperationID, tt.op)
			}
			if (res.RequestErr != nil) != tt.invalidReq {
				t.Errorf("RequestErr = %v, want invalid %v", res.RequestErr, tt.invalidReq)
			}
			all := strings.Join(res.Problems, "\n")
			if strings.Contains(all, testPlaintext) {
				t.Errorf("a problem message carries the plaintext")
			}
			switch {
			case tt.problem == "" && len(res.Problems) > 0:
				t.Errorf("unexpected problems:\n%s", all)
			case tt.problem != "" && !strings.Contains(all, tt.problem):
				t.Errorf("problems %q do not mention %q", all, tt.problem)
			}
		})
	}
	if ex := d.Exercised(); len(ex["getApiKey"]) != 1 || ex["getApiKey"][0] != 200 {
		t.Errorf("Exercised()[getApiKey] = %v, want [200] (only clean exchanges count)", ex["getApiKey"])
	}
}

// driftingAPI answers GET /v1/me with an extra field, and everything else per the doc.
func driftingAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", "req_1")
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/me":
		json.NewEncoder(w).Encode(map[string]any{"user": map[string]any{"id": "usr_1", "email": "a@b.c", "role": "admin"},
			"workspace": map[string]any{"id": "ws_1", "name": "W"}, "key": apiKeyJSON(), "extra": 1})
	case "/v1/api-keys":
		if r.URL.Query().Get("page_size") == "5000" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(errJSON("invalid_request"))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"api_keys": []any{apiKeyJSON()}, "next_page_token": ""})
	}
}

func TestMiddlewareFailsOnDrift(t *testing.T) {
	spy := &spyT{TB: t}
	srv := httptest.NewServer(Middleware(spy, http.HandlerFunc(driftingAPI)))
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithKeys(testPlaintext), client.WithRetry(1, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListKeys(context.Background(), client.ListKeysOptions{}); err != nil {
		t.Fatal(err)
	}
	if f := spy.failures(); len(f) != 0 {
		t.Fatalf("a conforming answer failed the test: %q", f)
	}
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f := spy.failures(); len(f) != 1 || !strings.Contains(f[0], "extra") {
		t.Errorf("failures = %q, want one about the extra field", f)
	}
}

func TestTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(driftingAPI))
	defer srv.Close()
	do := func(ctx context.Context, query string) []string {
		spy := &spyT{TB: t}
		hc := &http.Client{Transport: Transport(spy, nil)}
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/api-keys"+query, nil)
		req.Header.Set("Authorization", "Bearer "+testPlaintext)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// The caller must still get the whole answer after it was checked.
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !json.Valid(data) {
			t.Errorf("body after the transport is not the server's JSON: %q", data)
		}
		return spy.failures()
	}
	ctx := context.Background()
	if f := do(ctx, ""); len(f) != 0 {
		t.Errorf("valid exchange failed: %q", f)
	}
	if f := do(ctx, "?page_size=5000"); len(f) != 1 || !strings.Contains(f[0], "client sent a request the doc refuses") {
		t.Errorf("invalid client request: failures = %q, want one", f)
	}
	if f := do(WithInvalidRequest(ctx), "?page_size=5000"); len(f) != 0 {
		t.Errorf("deliberately invalid request refused with 400: failures = %q, want none", f)
	}
	if f := do(WithInvalidRequest(ctx), "?page_size=10"); len(f) != 1 || !strings.Contains(f[0], "doc accepts it") {
		t.Errorf("deliberately invalid request the doc accepts: failures = %q, want one", f)
	}
}
