package emulator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

func TestCreateKey(t *testing.T) {
	e := newEnv(t)
	r, created := e.createKey(e.adminToken, client.CreateKeyRequest{
		Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read", "stock:write", "stock:read"}, Description: "rotated",
	})
	e.want(r, 201, "")
	k := created.APIKey
	if created.Plaintext == nil || client.PrefixOf(*created.Plaintext) != k.Prefix {
		t.Fatal("201 lacks a plaintext matching the key's prefix")
	}
	if k.Name != "Nightly stock sync (2026)" || k.Description != "rotated" || k.Status != "active" ||
		fmt.Sprint(k.Scopes) != "[stock:read stock:write]" || k.CreatedBy.ID != e.admin.ID || k.LastUsedAt != nil {
		t.Fatalf("created %+v", k)
	}
	if k.CreatedAt.Sub(e.s.Now()).Abs() > 5*time.Second {
		t.Fatalf("created_at %v", k.CreatedAt)
	}
	// The new key works at once, for its own calls and for /v1/me, and its
	// plaintext is never shown again.
	e.want(e.do("GET", "/v1/me", *created.Plaintext, nil), 200, "")
	e.want(e.do("GET", "/v1/stock-levels?sku=1", *created.Plaintext, nil), 200, "")
	if got := e.getKey(k.ID); strings.Contains(string(e.do("GET", "/v1/api-keys/"+k.ID, e.adminToken, nil).body), "plaintext") || got.ID != k.ID {
		t.Fatal("GET shows a plaintext field")
	}
}

func TestCreateKeyRefusalsChangeNothing(t *testing.T) {
	e := newEnv(t)
	keys := e.count("api_keys")
	long := strings.Repeat("n", 201)
	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"malformed JSON", `{"name": "x", "scopes": [`, 400, client.CodeInvalidRequest},
		{"not an object", `["x"]`, 400, client.CodeInvalidRequest},
		{"empty body", ``, 400, client.CodeInvalidRequest},
		{"unknown field", `{"name":"x","scopes":["a:b"],"owner":"me"}`, 400, client.CodeInvalidRequest},
		{"trailing data", `{"name":"x","scopes":["a:b"]} {}`, 400, client.CodeInvalidRequest},
		{"wrong type", `{"name":1,"scopes":["a:b"]}`, 400, client.CodeInvalidRequest},
		{"huge body", `{"name":"` + strings.Repeat("x", 70<<10) + `","scopes":["a:b"]}`, 413, client.CodeInvalidRequest},
		{"no name", `{"scopes":["a:b"]}`, 422, client.CodeValidationFailed},
		{"blank name", `{"name":"   ","scopes":["a:b"]}`, 422, client.CodeValidationFailed},
		{"name too long", `{"name":"` + long + `","scopes":["a:b"]}`, 422, client.CodeValidationFailed},
		{"control character in name", `{"name":"a\u0007b","scopes":["a:b"]}`, 422, client.CodeValidationFailed},
		{"newline in name", `{"name":"a\nb","scopes":["a:b"]}`, 422, client.CodeValidationFailed},
		{"no scopes", `{"name":"x"}`, 422, client.CodeValidationFailed},
		{"empty scopes", `{"name":"x","scopes":[]}`, 422, client.CodeValidationFailed},
		{"bad scope", `{"name":"x","scopes":["Stock:Read"]}`, 422, client.CodeValidationFailed},
		{"scope without action", `{"name":"x","scopes":["stock"]}`, 422, client.CodeValidationFailed},
		{"scope with digits", `{"name":"x","scopes":["stock2:read"]}`, 422, client.CodeValidationFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.want(e.do("POST", "/v1/api-keys", e.adminToken, c.body), c.status, c.code)
		})
	}
	e.want(e.do("POST", "/v1/api-keys", e.adminToken, `{"name":"`+strings.Repeat("é", 200)+`","scopes":["a:b"]}`), 201, "")
	if got := e.count("api_keys"); got != keys+1 {
		t.Fatalf("%d keys, want %d: a refused create stored a key", got, keys+1)
	}
}

func TestListKeys(t *testing.T) {
	e := newEnv(t)
	var ids []string
	ids = append(ids, e.adminKey.ID, e.memberKey.ID)
	for i := 0; i < 5; i++ {
		_, k := e.mint(e.admin, fmt.Sprintf("k%d", i), "stock:read")
		ids = append(ids, k.ID)
	}
	e.want(e.do("POST", "/v1/api-keys/"+ids[3]+"/revoke", e.adminToken, nil), 200, "")

	list := func(q string) client.ListKeysResponse {
		r := e.do("GET", "/v1/api-keys"+q, e.memberToken, nil)
		e.want(r, 200, "")
		return decode[client.ListKeysResponse](t, r)
	}
	if got := list(""); len(got.APIKeys) != 6 || got.NextPageToken != "" {
		t.Fatalf("default (active): %d keys, token %q", len(got.APIKeys), got.NextPageToken)
	}
	if got := list("?status=revoked"); len(got.APIKeys) != 1 || got.APIKeys[0].ID != ids[3] || got.APIKeys[0].Status != "revoked" {
		t.Fatalf("revoked: %+v", got.APIKeys)
	}
	// Pages of 2 over all 7 keys come back in creation order, each once.
	var seen []string
	q := "?status=all&page_size=2"
	for pages := 0; ; pages++ {
		page := list(q)
		for _, k := range page.APIKeys {
			seen = append(seen, k.ID)
		}
		if page.NextPageToken == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		q = "?status=all&page_size=2&page_token=" + page.NextPageToken
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Fatalf("paged ids %v, want %v", seen, ids)
	}
	for _, q := range []string{"?page_size=0", "?page_size=1001", "?page_size=-1", "?page_size=ten", "?status=deleted", "?page_token=%25%25", "?page_token=bm9jb2xvbg"} {
		e.want(e.do("GET", "/v1/api-keys"+q, e.adminToken, nil), 400, client.CodeInvalidRequest)
	}
	e.want(e.do("GET", "/v1/api-keys?page_size=1000", e.adminToken, nil), 200, "")
}

func TestGetKeyAndUnknownIDs(t *testing.T) {
	e := newEnv(t)
	if got := e.getKey(e.memberKey.ID); got.CreatedBy.Email != "ben@example.com" || got.Prefix != e.memberKey.Prefix {
		t.Fatalf("got %+v", got)
	}
	e.want(e.do("GET", "/v1/api-keys/key_nope", e.adminToken, nil), 404, client.CodeNotFound)
	e.want(e.do("POST", "/v1/api-keys/key_nope/revoke", e.adminToken, nil), 404, client.CodeNotFound)
	e.want(e.do("DELETE", "/v1/api-keys/"+e.memberKey.ID, e.adminToken, nil), 405, client.CodeInvalidRequest)
	e.want(e.do("GET", "/v1/api-keys/"+e.memberKey.ID+"/revoke", e.adminToken, nil), 405, client.CodeInvalidRequest)
	e.want(e.do("POST", "/v1/api-keys/"+e.memberKey.ID+"/restore", e.adminToken, nil), 404, client.CodeNotFound)
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.member, "member's", "stock:read")
	r := e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil)
	e.want(r, 200, "")
	got := decode[client.APIKey](t, r)
	if got.Status != "revoked" || got.RevokedAt == nil || got.RevokedBy == nil || got.RevokedBy.ID != e.admin.ID {
		t.Fatalf("revoked %+v", got)
	}
	// Again: a no-op that keeps the first revocation.
	e.s.Advance(time.Hour)
	r = e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.memberToken, nil)
	e.want(r, 200, "")
	if again := decode[client.APIKey](t, r); !again.RevokedAt.Equal(*got.RevokedAt) || again.RevokedBy.ID != e.admin.ID {
		t.Fatalf("second revoke changed it: %+v", again)
	}
	e.want(e.do("GET", "/v1/me", tok, nil), 401, client.CodeUnauthenticated)
}

func TestRoles(t *testing.T) {
	e := newEnv(t)
	adminsTok, adminsKey := e.mint(e.admin, "admin's", "stock:write")
	_, membersKey := e.mint(e.member, "member's", "stock:read")
	keys := e.count("api_keys")

	// A member lists and reads every key.
	r := e.do("GET", "/v1/api-keys", e.memberToken, nil)
	e.want(r, 200, "")
	if n := len(decode[client.ListKeysResponse](t, r).APIKeys); n != keys {
		t.Fatalf("member sees %d keys, want %d", n, keys)
	}
	e.want(e.do("GET", "/v1/api-keys/"+adminsKey.ID, e.memberToken, nil), 200, "")

	// It grants only scopes it holds, and revokes only its own keys.
	r, _ = e.createKey(e.memberToken, client.CreateKeyRequest{Name: "x", Scopes: []string{"stock:read", "stock:write"}})
	e.want(r, 403, client.CodeForbidden)
	e.want(e.do("POST", "/v1/api-keys/"+adminsKey.ID+"/revoke", e.memberToken, nil), 403, client.CodeForbidden)
	if e.count("api_keys") != keys || e.getKey(adminsKey.ID).Status != "active" {
		t.Fatal("a forbidden request changed something")
	}
	r, _ = e.createKey(e.memberToken, client.CreateKeyRequest{Name: "x", Scopes: []string{"stock:read", "reports:read"}})
	e.want(r, 201, "")
	e.want(e.do("POST", "/v1/api-keys/"+membersKey.ID+"/revoke", e.memberToken, nil), 200, "")

	// An admin grants anything and revokes anyone's key.
	r, _ = e.createKey(e.adminToken, client.CreateKeyRequest{Name: "y", Scopes: []string{"payroll:admin"}})
	e.want(r, 201, "")
	_, other := e.mint(e.member, "member's 2", "stock:read")
	e.want(e.do("POST", "/v1/api-keys/"+other.ID+"/revoke", e.adminToken, nil), 200, "")

	// Without keys:manage on the presented key, management is forbidden even
	// to an admin, while /v1/me and the automation's calls work.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/api-keys"}, {"POST", "/v1/api-keys"}, {"GET", "/v1/api-keys/" + other.ID},
		{"POST", "/v1/api-keys/" + other.ID + "/revoke"}, {"GET", "/v1/execution-log"},
	} {
		e.want(e.do(c.method, c.path, adminsTok, `{"name":"z","scopes":["a:b"]}`), 403, client.CodeForbidden)
	}
	e.want(e.do("GET", "/v1/me", adminsTok, nil), 200, "")
	e.want(e.do("PATCH", "/v1/stock-levels/42", adminsTok, `{}`), 200, "")
}

// A role change shows at once, on the keys the user issued and in what the
// user's keys may do, though those keys are already proven and cached.
func TestSetRoleActsAtOnce(t *testing.T) {
	e := newEnv(t)
	_, adminsKey := e.mint(e.admin, "admin's", "stock:write")
	e.want(e.do("GET", "/v1/me", e.memberToken, nil), 200, "") // proven and cached as a member
	if err := e.s.SetRole(context.Background(), e.member.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	if got := e.getKey(e.memberKey.ID).CreatedBy.Role; got != "admin" {
		t.Fatalf("after the promotion the member's key shows created_by.role %q", got)
	}
	if me := decode[client.Me](t, e.do("GET", "/v1/me", e.memberToken, nil)); me.User.Role != "admin" {
		t.Fatalf("/v1/me after the promotion: role %q", me.User.Role)
	}
	r := e.do("POST", "/v1/api-keys/"+adminsKey.ID+"/revoke", e.memberToken, nil)
	e.want(r, 200, "")
	if k := decode[client.APIKey](t, r); k.RevokedBy == nil || k.RevokedBy.Role != "admin" || k.CreatedBy.Role != "admin" {
		t.Fatalf("revoked by the promoted member: %+v", k)
	}
	if err := e.s.SetRole(context.Background(), e.member.ID, "member"); err != nil {
		t.Fatal(err)
	}
	_, other := e.mint(e.admin, "admin's 2", "stock:write")
	e.want(e.do("POST", "/v1/api-keys/"+other.ID+"/revoke", e.memberToken, nil), 403, client.CodeForbidden)
	if err := e.s.SetRole(context.Background(), e.member.ID, "owner"); err == nil {
		t.Fatal("SetRole took an unknown role")
	}
	if err := e.s.SetRole(context.Background(), "usr_nobody", "admin"); err == nil {
		t.Fatal("SetRole took an unknown user")
	}
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	req := client.CreateKeyRequest{Name: "idem", Scopes: []string{"stock:read"}}
	r1, first := e.createKey(e.adminToken, req, "Idempotency-Key", "rot-1")
	e.want(r1, 201, "")
	keys := e.count("api_keys")

	r2, replay := e.createKey(e.adminToken, req, "Idempotency-Key", "rot-1")
	e.want(r2, 200, "")
	if r2.header.Get("Idempotent-Replayed") != "true" || replay.Plaintext != nil || replay.APIKey.ID != first.APIKey.ID {
		t.Fatalf("replay: header %q, body %s", r2.header.Get("Idempotent-Replayed"), r2.body)
	}
	if !strings.Contains(string(r2.body), `"plaintext":null`) {
		t.Fatalf("replay body lacks an explicit null plaintext: %s", r2.body)
	}
	if r1.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the first answer claims to be a replay")
	}

	r3, _ := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "other", Scopes: []string{"stock:read"}}, "Idempotency-Key", "rot-1")
	e.want(r3, 422, client.CodeValidationFailed)

	// In flight: the slot is held as it is while the first request runs.
	slot := e.admin.ID + "\x00" + "rot-2"
	if !e.s.acquireSlot(slot) {
		t.Fatal("slot busy")
	}
	r4, _ := e.createKey(e.adminToken, req, "Idempotency-Key", "rot-2")
	e.want(r4, 409, client.CodeConflict)
	e.s.releaseSlot(slot)

	for _, bad := range []string{strings.Repeat("k", 256), "tab\there"} {
		r, _ := e.createKey(e.adminToken, req, "Idempotency-Key", bad)
		e.want(r, 400, client.CodeInvalidRequest)
	}
	if got := e.count("api_keys"); got != keys {
		t.Fatalf("%d keys, want %d", got, keys)
	}
	r, _ := e.createKey(e.adminToken, req, "Idempotency-Key", strings.Repeat("k", 255))
	e.want(r, 201, "")

	// Keys are per user, and last 24 hours.
	r, _ = e.createKey(e.memberToken, req, "Idempotency-Key", "rot-1")
	e.want(r, 201, "")
	e.s.Advance(25 * time.Hour)
	r, again := e.createKey(e.adminToken, req, "Idempotency-Key", "rot-1")
	e.want(r, 201, "")
	if again.APIKey.ID == first.APIKey.ID {
		t.Fatal("an expired Idempotency-Key replayed")
	}
	// No header: every POST creates.
	r, _ = e.createKey(e.adminToken, req)
	e.want(r, 201, "")
	r, _ = e.createKey(e.adminToken, req)
	e.want(r, 201, "")
}

func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	e := newEnv(t)
	keys := e.count("api_keys")
	const n = 12
	var wg sync.WaitGroup
	start := make(chan struct{})
	var mu sync.Mutex
	statuses := map[int]int{}
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", e.ts.URL+"/v1/api-keys", strings.NewReader(`{"name":"dup","scopes":["stock:read"]}`))
			req.Header.Set("Authorization", "Bearer "+e.adminToken)
			req.Header.Set("Idempotency-Key", "same")
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var cr client.CreateKeyResponse
			if resp.StatusCode < 300 {
				if err := jsonDecode(resp, &cr); err != nil {
					t.Error(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if cr.APIKey.ID != "" {
				ids[cr.APIKey.ID] = true
			}
		}()
	}
	close(start)
	wg.Wait()
	if statuses[201] != 1 || statuses[200]+statuses[409]+1 != n || len(ids) != 1 {
		t.Fatalf("statuses %v, ids %d: want exactly one 201 and the rest replays or 409s", statuses, len(ids))
	}
	if got := e.count("api_keys"); got != keys+1 {
		t.Fatalf("%d keys created, want 1", got-keys)
	}
}
