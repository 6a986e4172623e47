// Package contract checks that bos-emulator, the client and docs/openapi.yaml
// agree: the real emulator runs in-process behind openapitest.Middleware and
// the real client talks to it through openapitest.Transport, so every
// exchange is validated from both ends. Drift in any of the three fails here.
package contract

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/internal/openapitest"
)

// env is one emulator with a workspace of an admin, a member and keys.
type env struct {
	t   *testing.T
	doc *openapitest.Doc
	emu *emulator.Server
	url string
	hc  *http.Client // validating transport, for calls the client cannot make

	admin, member       client.User
	adminKey, memberKey string // keys:manage
	autoKey             string // the automation's key: stock:read, stock:write
	autoKeyInfo         client.APIKey
}

func newEnv(t *testing.T, doc *openapitest.Doc, cfg emulator.Config, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	cfg.DBPath = filepath.Join(t.TempDir(), "bos.db")
	cfg.BcryptCost = 4
	cfg.DevEndpoints = true
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	var h http.Handler = emu.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(doc.Middleware(t, h))
	t.Cleanup(srv.Close)

	e := &env{t: t, doc: doc, emu: emu, url: srv.URL, hc: &http.Client{Transport: doc.Transport(t, nil)}}
	ctx := context.Background()
	if e.admin, err = emu.CreateUser(ctx, "ana@example.com", "admin", nil); err != nil {
		t.Fatal(err)
	}
	if e.member, err = emu.CreateUser(ctx, "ben@example.com", "member", []string{"stock:read", client.ScopeManage}); err != nil {
		t.Fatal(err)
	}
	if e.adminKey, _, err = emu.MintKey(ctx, e.admin.ID, "plana admin", []string{client.ScopeManage}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if e.memberKey, _, err = emu.MintKey(ctx, e.member.ID, "ben's plana", []string{client.ScopeManage}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if e.autoKey, e.autoKeyInfo, err = emu.MintKey(ctx, e.admin.ID, "Nightly stock sync (2025)", []string{"stock:read", "stock:write"}, emu.Now().Add(-400*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	return e
}

// client returns the real client presenting keys, through the validating
// transport, without retries unless opts add them.
func (e *env) client(keys []string, opts ...client.Option) *client.Client {
	e.t.Helper()
	c, err := client.New(e.url, append([]client.Option{
		client.WithKeys(keys...),
		client.WithHTTPClient(e.hc),
		client.WithUserAgent("contract-test/1"),
		client.WithRetry(1, 10*time.Second),
	}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) as(key string) *client.Client { return e.client([]string{key}) }

// raw sends a request the client would never build (malformed JSON, a
// missing header), still through the validating transport.
func (e *env) raw(ctx context.Context, method, path, key, body string, hdr map[string]string) (int, client.ErrorBody) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb client.ErrorBody
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &eb)
	return resp.StatusCode, eb
}

// wantAPIError checks err is the contract's error answer for status and code.
func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want HTTP %d %s", err, status, code)
	}
	if apiErr.StatusCode != status || apiErr.Code != code || !strings.HasPrefix(apiErr.RequestID, "req_") {
		t.Errorf("error = HTTP %d %q (request %q), want HTTP %d %q with a request id", apiErr.StatusCode, apiErr.Code, apiErr.RequestID, status, code)
	}
}

var invalid = openapitest.WithInvalidRequest

func TestContract(t *testing.T) {
	doc := openapitest.Load(t)
	e := newEnv(t, doc, emulator.Config{}, nil)
	ctx := context.Background()
	admin, member := e.as(e.adminKey), e.as(e.memberKey)

	subtests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"me", func(t *testing.T) {
			me, err := admin.Me(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if me.User.ID != e.admin.ID || me.User.Role != "admin" || me.Key.Prefix != client.PrefixOf(e.adminKey) || me.Workspace.ID == "" {
				t.Errorf("admin's /v1/me = user %s (%s), key %s", me.User.ID, me.User.Role, me.Key.Prefix)
			}
			if me, err = member.Me(ctx); err != nil || me.User.Role != "member" || me.User.Email != "ben@example.com" {
				t.Errorf("member's /v1/me = %+v, %v", me, err)
			}
		}},
		{"unauthenticated", func(t *testing.T) {
			_, err := e.client(nil).Me(invalid(ctx))
			wantAPIError(t, err, 401, client.CodeUnauthenticated)
			for _, key := range []string{"pa_live_garbage", typo(e.adminKey), client.FormatKey("live", "ZZZZZZZZ", strings.Repeat("z", 32))} {
				_, err := e.as(key).Me(ctx)
				if !errors.Is(err, client.ErrUnauthenticated) {
					t.Errorf("a malformed or unknown key: error = %v, want 401", err)
				}
			}
		}},
		{"create, replay, validation", func(t *testing.T) {
			req := client.CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read", "stock:write"}, Description: "rotated by the contract test"}
			idem := client.NewIdempotencyKey()
			created, err := admin.CreateKey(ctx, req, idem)
			if err != nil {
				t.Fatal(err)
			}
			k, err := client.ParseKey(created.Plaintext)
			if err != nil || created.Replayed || k.Prefix != created.APIKey.Prefix || created.APIKey.Status != client.StatusActive {
				t.Fatalf("created key: parse error %v, replayed %v, prefix matches %v", err, created.Replayed, err == nil && k.Prefix == created.APIKey.Prefix)
			}
			if created.APIKey.CreatedBy.ID != e.admin.ID || created.APIKey.LastUsedAt != nil || created.APIKey.Description != req.Description {
				t.Errorf("created key = %+v", created.APIKey)
			}
			// The new key works at once.
			if _, err := e.as(created.Plaintext).Me(ctx); err != nil {
				t.Errorf("the new key is refused: %v", err)
			}
			again, err := admin.CreateKey(ctx, req, idem)
			if err != nil || !again.Replayed || again.Plaintext != "" || again.APIKey.ID != created.APIKey.ID {
				t.Errorf("replay: err %v, replayed %v, plaintext shown %v, same id %v", err, again.Replayed, again.Plaintext != "", again != nil && again.APIKey.ID == created.APIKey.ID)
			}
			other := req
			other.Name = "something else"
			_, err = admin.CreateKey(ctx, other, idem)
			wantAPIError(t, err, 422, client.CodeValidationFailed)
			other = req
			other.Description = "another lineage"
			_, err = admin.CreateKey(ctx, other, idem)
			wantAPIError(t, err, 422, client.CodeValidationFailed)
			// A description is at most 500 characters; "" when none.
			_, err = admin.CreateKey(invalid(ctx), client.CreateKeyRequest{Name: "wordy", Scopes: []string{"stock:read"}, Description: strings.Repeat("é", 501)}, client.NewIdempotencyKey())
			wantAPIError(t, err, 422, client.CodeValidationFailed)
			plain, err := admin.CreateKey(ctx, client.CreateKeyRequest{Name: "plain", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
			if err != nil || plain.APIKey.Description != "" {
				t.Errorf("a key created without a description: %+v, %v", plain, err)
			}

			_, err = admin.CreateKey(ctx, client.CreateKeyRequest{Name: "   ", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
			wantAPIError(t, err, 422, client.CodeValidationFailed)
			_, err = admin.CreateKey(invalid(ctx), client.CreateKeyRequest{Name: "", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
			wantAPIError(t, err, 422, client.CodeValidationFailed)
			_, err = admin.CreateKey(invalid(ctx), client.CreateKeyRequest{Name: "no scopes", Scopes: []string{}}, client.NewIdempotencyKey())
			wantAPIError(t, err, 422, client.CodeValidationFailed)
			_, err = admin.CreateKey(invalid(ctx), client.CreateKeyRequest{Name: "huge", Scopes: []string{"stock:read"}, Description: strings.Repeat("x", 65<<10)}, client.NewIdempotencyKey())
			wantAPIError(t, err, 413, client.CodeInvalidRequest)
			// A member grants only scopes it holds.
			_, err = member.CreateKey(ctx, client.CreateKeyRequest{Name: "orders", Scopes: []string{"orders:write"}}, client.NewIdempotencyKey())
			wantAPIError(t, err, 403, client.CodeForbidden)
			if _, err := member.CreateKey(ctx, client.CreateKeyRequest{Name: "ben's stock reader", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey()); err != nil {
				t.Errorf("member creating a key with its own scope: %v", err)
			}
			// Without an Idempotency-Key (curl users) it still creates.
			var out client.CreateKeyResponse
			if _, err := admin.Do(ctx, client.Request{Method: http.MethodPost, Path: "/v1/api-keys", Body: req}, &out); err != nil || out.Plaintext == nil {
				t.Errorf("create without Idempotency-Key: %v", err)
			}
		}},
		{"create: malformed requests", func(t *testing.T) {
			for _, tc := range []struct {
				name, body string
				hdr        map[string]string
				status     int
			}{
				{"malformed JSON", `{"name":`, nil, 400},
				{"unknown field", `{"name":"n","scopes":["a:b"],"plaintext":"x"}`, nil, 400},
				{"wrong type", `{"name":7,"scopes":["a:b"]}`, nil, 400},
				{"Idempotency-Key over 255", `{"name":"n","scopes":["a:b"]}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 400},
			} {
				status, eb := e.raw(invalid(ctx), http.MethodPost, "/v1/api-keys", e.adminKey, tc.body, tc.hdr)
				if status != tc.status || eb.Error.Code != client.CodeInvalidRequest {
					t.Errorf("%s: HTTP %d %q, want %d invalid_request", tc.name, status, eb.Error.Code, tc.status)
				}
			}
		}},
		{"list", func(t *testing.T) {
			var want []string
			for _, name := range []string{"a", "b", "c", "d", "e"} {
				ck, err := admin.CreateKey(ctx, client.CreateKeyRequest{Name: "list " + name, Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, ck.APIKey.ID)
			}
			pages := 0
			var got []string
			err := admin.ListKeysPages(ctx, client.ListKeysOptions{PageSize: 2}, func(p []client.APIKey) error {
				pages++
				for _, k := range p {
					got = append(got, k.ID)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range want {
				if !slices.Contains(got, id) {
					t.Errorf("key %s missing from the paged list", id)
				}
			}
			all, err := member.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
			if err != nil || len(all) != len(got) || pages < (len(got)+1)/2 {
				t.Errorf("member lists %d keys (err %v), admin %d in %d pages", len(all), err, len(got), pages)
			}
			// The automation key lacks keys:manage.
			_, err = e.as(e.autoKey).ListKeys(ctx, client.ListKeysOptions{})
			wantAPIError(t, err, 403, client.CodeForbidden)
			for _, q := range []string{"?page_size=1001", "?page_size=0", "?status=bogus", "?page_size=ten"} {
				if status, eb := e.raw(invalid(ctx), http.MethodGet, "/v1/api-keys"+q, e.adminKey, "", nil); status != 400 || eb.Error.Code != client.CodeInvalidRequest {
					t.Errorf("%s: HTTP %d %q, want 400 invalid_request", q, status, eb.Error.Code)
				}
			}
			if status, _ := e.raw(ctx, http.MethodGet, "/v1/api-keys?page_token=not-a-token", e.adminKey, "", nil); status != 400 {
				t.Errorf("a bogus page_token: HTTP %d, want 400", status)
			}
		}},
		{"get", func(t *testing.T) {
			k, err := admin.GetKey(ctx, e.autoKeyInfo.ID)
			if err != nil || k.Prefix != e.autoKeyInfo.Prefix || !k.CreatedAt.Equal(e.autoKeyInfo.CreatedAt) {
				t.Errorf("GetKey = %+v, %v", k, err)
			}
			_, err = admin.GetKey(ctx, "key_00000000000000000000000000")
			wantAPIError(t, err, 404, client.CodeNotFound)
			_, err = e.as(e.autoKey).GetKey(ctx, e.autoKeyInfo.ID)
			wantAPIError(t, err, 403, client.CodeForbidden)
		}},
		{"automation calls and the execution log", func(t *testing.T) {
			auto := e.as(e.autoKey)
			before := e.emu.Now()
			for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
				var body any
				if m == "POST" || m == "PUT" || m == "PATCH" {
					body = map[string]any{"sku": "A-1", "level": 7}
				}
				var out map[string]any
				if _, err := auto.Do(ctx, client.Request{Method: m, Path: "/v1/stock-levels", Body: body}, &out); err != nil {
					t.Errorf("%s /v1/stock-levels: %v", m, err)
				}
			}
			// Management paths with methods they do not take are outside the
			// contract; the server still refuses them with the error envelope.
			_, err := auto.Do(invalid(ctx), client.Request{Method: "PUT", Path: "/v1/me"}, nil)
			wantAPIError(t, err, 405, client.CodeInvalidRequest)
			_, err = auto.Do(invalid(ctx), client.Request{Method: "DELETE", Path: "/v1/api-keys"}, nil)
			wantAPIError(t, err, 403, client.CodeForbidden)

			k, err := admin.GetKey(ctx, e.autoKeyInfo.ID)
			if err != nil || k.LastUsedAt == nil || k.LastUsedAt.Before(before.Add(-time.Second)) {
				t.Errorf("last_used_at = %v after use (err %v)", k.LastUsedAt, err)
			}
			entries, err := admin.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: e.autoKeyInfo.ID, PageSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) < 7 {
				t.Fatalf("%d log entries for the automation key, want at least 7", len(entries))
			}
			var methods []string
			var statuses []int
			for _, en := range entries[:7] {
				methods, statuses = append(methods, en.Method), append(statuses, en.Status)
				if en.KeyPrefix != e.autoKeyInfo.Prefix || en.UserAgent != "contract-test/1" || en.SourceIP == "" {
					t.Errorf("entry %+v", en)
				}
			}
			// Newest first, and the refused calls are logged too.
			if want := []string{"DELETE", "PUT", "DELETE", "PATCH", "PUT", "POST", "GET"}; !slices.Equal(methods, want) {
				t.Errorf("methods newest first = %v, want %v", methods, want)
			}
			if want := []int{403, 405, 200, 200, 200, 200, 200}; !slices.Equal(statuses, want) {
				t.Errorf("statuses newest first = %v, want %v", statuses, want)
			}
			for i := 1; i < len(entries); i++ {
				if entries[i].At.After(entries[i-1].At) {
					t.Errorf("entries out of order at %d", i)
				}
			}
			byPrefix, err := admin.ExecutionLog(ctx, client.ExecutionLogOptions{KeyPrefix: e.autoKeyInfo.Prefix, Since: before.Add(-time.Second), Until: e.emu.Now().Add(time.Second), Limit: 3})
			if err != nil || len(byPrefix) != 3 || byPrefix[0].ID != entries[0].ID {
				t.Errorf("by prefix with Limit 3: %d entries, err %v", len(byPrefix), err)
			}
			none, err := admin.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: e.autoKeyInfo.ID, Until: before.Add(-time.Hour)})
			if err != nil || len(none) != 0 {
				t.Errorf("until before any call: %d entries, err %v", len(none), err)
			}
			if status, _ := e.raw(invalid(ctx), http.MethodGet, "/v1/execution-log?since=yesterday", e.adminKey, "", nil); status != 400 {
				t.Errorf("since=yesterday: HTTP %d, want 400", status)
			}
			_, err = auto.ExecutionLog(ctx, client.ExecutionLogOptions{})
			wantAPIError(t, err, 403, client.CodeForbidden)
		}},
		{"revoke", func(t *testing.T) {
			ck, err := member.CreateKey(ctx, client.CreateKeyRequest{Name: "to revoke", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
			if err != nil {
				t.Fatal(err)
			}
			// A member revokes only keys it issued.
			_, err = member.RevokeKey(ctx, e.autoKeyInfo.ID)
			wantAPIError(t, err, 403, client.CodeForbidden)
			k, err := member.RevokeKey(ctx, ck.APIKey.ID)
			if err != nil || k.Status != client.StatusRevoked || k.RevokedAt == nil || k.RevokedBy == nil || k.RevokedBy.ID != e.member.ID {
				t.Fatalf("revoke = %+v, %v", k, err)
			}
			again, err := admin.RevokeKey(ctx, ck.APIKey.ID)
			if err != nil || !again.RevokedAt.Equal(*k.RevokedAt) || again.RevokedBy.ID != e.member.ID {
				t.Errorf("revoking again is not a no-op: %+v, %v", again, err)
			}
			_, err = e.as(ck.Plaintext).Do(ctx, client.Request{Method: "GET", Path: "/v1/stock-levels"}, nil)
			wantAPIError(t, err, 401, client.CodeUnauthenticated)
			// The refused call is in the log against the revoked key; a wrong
			// secret for the same public id is not (no key proved).
			parsed, _ := client.ParseKey(ck.Plaintext)
			_, err = e.as(client.FormatKey("live", parsed.PublicID, strings.Repeat("w", client.SecretLen))).Me(ctx)
			wantAPIError(t, err, 401, client.CodeUnauthenticated)
			refused, err := admin.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: ck.APIKey.ID})
			if err != nil || len(refused) != 1 || refused[0].Status != 401 || refused[0].KeyPrefix != ck.APIKey.Prefix || refused[0].Path != "/v1/stock-levels" {
				t.Errorf("the revoked key's log = %+v (err %v), want one 401 entry for GET /v1/stock-levels", refused, err)
			}
			if k, err := admin.GetKey(ctx, ck.APIKey.ID); err != nil || k.LastUsedAt != nil {
				t.Errorf("a refused call moved last_used_at: %v (err %v)", k.LastUsedAt, err)
			}
			_, err = admin.RevokeKey(ctx, "key_00000000000000000000000000")
			wantAPIError(t, err, 404, client.CodeNotFound)
			revoked, err := admin.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusRevoked})
			if err != nil || len(revoked) != 1 || revoked[0].ID != ck.APIKey.ID {
				t.Errorf("status=revoked lists %d keys (err %v), want the one revoked", len(revoked), err)
			}
		}},
		{"roles", func(t *testing.T) {
			// created_by.role and revoked_by.role are the user's role now,
			// on every key an answer carries.
			ck, err := member.CreateKey(ctx, client.CreateKeyRequest{Name: "ben's own", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
			if err != nil || ck.APIKey.CreatedBy.Role != "member" {
				t.Fatalf("a member's create: created_by %+v, %v", ck, err)
			}
			if me, err := member.Me(ctx); err != nil || me.Key.CreatedBy.Role != "member" {
				t.Errorf("member's /v1/me key.created_by = %+v, %v", me.Key.CreatedBy, err)
			}
			if me, err := admin.Me(ctx); err != nil || me.Key.CreatedBy.Role != "admin" {
				t.Errorf("admin's /v1/me key.created_by = %+v, %v", me.Key.CreatedBy, err)
			}
			if k, err := member.GetKey(ctx, e.autoKeyInfo.ID); err != nil || k.CreatedBy.Role != "admin" {
				t.Errorf("GetKey created_by = %+v, %v", k.CreatedBy, err)
			}
			k, err := admin.RevokeKey(ctx, ck.APIKey.ID)
			if err != nil || k.CreatedBy.Role != "member" || k.RevokedBy == nil || k.RevokedBy.Role != "admin" {
				t.Fatalf("revoke: created_by %+v, revoked_by %+v, %v", k.CreatedBy, k.RevokedBy, err)
			}
			want := map[string]string{e.admin.ID: "admin", e.member.ID: "member"}
			all, err := admin.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range all {
				if k.CreatedBy.Role != want[k.CreatedBy.ID] || (k.RevokedBy != nil && k.RevokedBy.Role != want[k.RevokedBy.ID]) {
					t.Errorf("listed %s: created_by %+v, revoked_by %+v", k.Name, k.CreatedBy, k.RevokedBy)
				}
			}
			// The role now, not at creation: a promotion shows on the keys
			// the user issued before it.
			if err := e.emu.SetRole(ctx, e.member.ID, "admin"); err != nil {
				t.Fatal(err)
			}
			defer e.emu.SetRole(ctx, e.member.ID, "member")
			if k, err := admin.GetKey(ctx, ck.APIKey.ID); err != nil || k.CreatedBy.Role != "admin" {
				t.Errorf("after a promotion: created_by %+v, %v", k.CreatedBy, err)
			}
		}},
		{"fallback from a revoked key", func(t *testing.T) {
			ck, err := admin.CreateKey(ctx, client.CreateKeyRequest{Name: "short-lived", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := admin.RevokeKey(ctx, ck.APIKey.ID); err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			if _, err := e.client([]string{ck.Plaintext, e.autoKey}).Do(ctx, client.Request{Method: "GET", Path: "/v1/stock-levels"}, &out); err != nil {
				t.Errorf("the fallback key was not used: %v", err)
			}
		}},
		{"forged keys", func(t *testing.T) {
			ck, err := admin.CreateKey(ctx, client.CreateKeyRequest{Name: "forged at", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
			if err != nil {
				t.Fatal(err)
			}
			// Valid shape and checksum, the key's public id, a wrong secret:
			// a few cost a bcrypt and get 401, then the id is limited (429
			// with Retry-After), and none is logged.
			parsed, _ := client.ParseKey(ck.Plaintext)
			statuses := map[int]int{}
			for i := range 12 {
				forged := client.FormatKey("live", parsed.PublicID, strings.Repeat(string(rune('a'+i)), client.SecretLen))
				status, eb := e.raw(ctx, http.MethodGet, "/v1/stock-levels", forged, "", nil)
				statuses[status]++
				if status == 429 && eb.Error.Code != client.CodeRateLimited {
					t.Errorf("429 with code %q", eb.Error.Code)
				}
			}
			if statuses[401] == 0 || statuses[429] == 0 || statuses[401]+statuses[429] != 12 {
				t.Errorf("12 forged keys answered %v, want 401s then 429s", statuses)
			}
			if entries, err := admin.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: ck.APIKey.ID}); err != nil || len(entries) != 0 {
				t.Errorf("forged calls logged: %d entries (err %v)", len(entries), err)
			}
		}},
		{"paths outside the contract", func(t *testing.T) {
			if status, eb := e.raw(invalid(ctx), http.MethodGet, "/v2/stock-levels", e.autoKey, "", nil); status != 404 || eb.Error.Code != client.CodeNotFound {
				t.Errorf("GET /v2/...: HTTP %d %q, want 404 not_found", status, eb.Error.Code)
			}
		}},
		{"server time", func(t *testing.T) {
			c := admin
			if _, err := c.Me(ctx); err != nil {
				t.Fatal(err)
			}
			status, _ := e.raw(ctx, http.MethodPost, "/_emulator/clock", "", `{"advance":"48h"}`, nil)
			if status != 200 {
				t.Fatalf("advancing the clock: HTTP %d", status)
			}
			if _, err := c.Me(ctx); err != nil {
				t.Fatal(err)
			}
			now, ok := c.ServerNow()
			if d := e.emu.Now().Sub(now); !ok || d < -2*time.Second || d > 2*time.Second {
				t.Errorf("ServerNow() is %v off the emulator's clock", d)
			}
			if d := time.Until(now); d < 47*time.Hour {
				t.Errorf("ServerNow() is only %v ahead of local time after a 48h advance", d)
			}
		}},
	}
	ran := 0
	for _, st := range subtests {
		if t.Run(st.name, st.fn) {
			ran++
		}
	}
	if ran < len(subtests) {
		return // a failure or a -run filter: coverage would mislead
	}
	if missing := doc.Unexercised(); len(missing) > 0 {
		t.Errorf("operations of docs/openapi.yaml no test exercised: %v", missing)
	}
	t.Logf("exercised: %v", doc.Exercised())
}

// A create whose answer is lost on the way back is retried with the same
// Idempotency-Key and found again as a replay, never created twice.
func TestLostCreateAnswerIsReplayed(t *testing.T) {
	doc := openapitest.Load(t)
	dropped := 0
	dropFirstCreate := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/v1/api-keys" || dropped > 0 {
				h.ServeHTTP(w, r)
				return
			}
			dropped++
			h.ServeHTTP(httptest.NewRecorder(), r) // handled, answer discarded
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		})
	}
	e := newEnv(t, doc, emulator.Config{}, dropFirstCreate)
	c := e.client([]string{e.adminKey}, client.WithRetry(3, 10*time.Second), client.WithBackoff(time.Millisecond, 10*time.Millisecond))
	ctx := context.Background()
	ck, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "lost", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 1 || !ck.Replayed || ck.Plaintext != "" {
		t.Fatalf("dropped %d answers; replayed %v, plaintext shown %v: want the replay of the lost create", dropped, ck.Replayed, ck.Plaintext != "")
	}
	keys, err := c.ListKeys(ctx, client.ListKeysOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if k.Name == "lost" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d keys named lost, want exactly 1", n)
	}
}

// Under injected 500s, 429s (both Retry-After forms) and dropped connections,
// every answer still matches the doc and the retrying client gets through.
func TestFaultsStayWithinTheContract(t *testing.T) {
	doc := openapitest.Load(t)
	// 429bad (an unparseable Retry-After) is left out: it breaks the
	// contract on purpose, to test clients' robustness.
	faults, err := emulator.ParseFaults("rate=0.3,kinds=500+429+429date+reset+reset-after", 42)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, doc, emulator.Config{Faults: faults}, nil)
	c := e.client([]string{e.adminKey}, client.WithRetry(8, 30*time.Second), client.WithBackoff(time.Millisecond, 20*time.Millisecond))
	ctx := context.Background()
	for i := range 12 {
		if _, err := c.Me(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	ck, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "under faults", Scopes: []string{"stock:read"}}, client.NewIdempotencyKey())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.ListKeys(ctx, client.ListKeysOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if k.Name == "under faults" {
			n++
		}
	}
	if n != 1 || ck.APIKey.Name != "under faults" {
		t.Errorf("%d keys created under faults, want exactly 1", n)
	}
	seen := doc.Exercised()["getMe"]
	if !slices.Contains(seen, 200) || (!slices.Contains(seen, 429) && !slices.Contains(seen, 500)) {
		t.Errorf("getMe answers checked: %v; want 200 and injected faults", seen)
	}
}

// typo changes the last character of key, whatever it was: replacing it with
// a fixed letter would leave the key valid when it already ended in that one.
func typo(key string) string {
	last := "x"
	if strings.HasSuffix(key, last) {
		last = "y"
	}
	return key[:len(key)-1] + last
}
