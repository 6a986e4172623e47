package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

func TestExecutionLog(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.member, "automation", "stock:read")
	req, _ := http.NewRequest("PUT", e.ts.URL+"/v1/stock-levels/7?force=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", "stock-sync/1.4")
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e.want(e.do("GET", "/v1/api-keys", tok, nil), 403, client.CodeForbidden)
	e.want(e.do("GET", "/v1/me", tok, nil), 200, "")

	entries := e.logEntries("?key_id=" + k.ID)
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	// Newest first; failures after authentication are logged too.
	if entries[0].Path != "/v1/me" || entries[1].Status != 403 || entries[1].Path != "/v1/api-keys" {
		t.Fatalf("order or content: %+v", entries)
	}
	put := entries[2]
	if put.Method != "PUT" || put.Path != "/v1/stock-levels/7" || put.Status != 200 || put.SourceIP != "127.0.0.1" ||
		put.UserAgent != "stock-sync/1.4" || put.KeyPrefix != k.Prefix || put.KeyID != k.ID || len(put.ID) < 5 || put.ID[:4] != "exe_" {
		t.Fatalf("entry %+v", put)
	}
	if got := e.getKey(k.ID).LastUsedAt; got == nil || !got.Equal(entries[0].At) {
		t.Fatalf("last_used_at %v, want the latest entry's %v", got, entries[0].At)
	}

	if got := e.logEntries("?key_prefix=" + k.Prefix); len(got) != 3 {
		t.Fatalf("by prefix: %d", len(got))
	}
	// since is inclusive, until exclusive.
	at := func(ts time.Time) string { return url.QueryEscape(ts.Format(time.RFC3339Nano)) }
	if got := e.logEntries("?key_id=" + k.ID + "&since=" + at(entries[1].At)); len(got) != 2 {
		t.Fatalf("since: %d entries, want 2", len(got))
	}
	if got := e.logEntries("?key_id=" + k.ID + "&until=" + at(entries[1].At)); len(got) != 1 || got[0].ID != put.ID {
		t.Fatalf("until: %+v", got)
	}
	if got := e.logEntries("?key_id=" + k.ID + "&since=" + at(entries[1].At) + "&until=" + at(entries[0].At)); len(got) != 1 || got[0].ID != entries[1].ID {
		t.Fatalf("since+until: %+v", got)
	}
	if got := e.logEntries("?key_id=key_unknown"); len(got) != 0 {
		t.Fatalf("unknown key: %d entries", len(got))
	}

	// Pages of one walk the same entries.
	var paged []string
	q := "?key_id=" + k.ID + "&page_size=1"
	for {
		r := e.do("GET", "/v1/execution-log"+q, e.adminToken, nil)
		e.want(r, 200, "")
		page := decode[client.ExecutionLogResponse](t, r)
		for _, en := range page.Entries {
			paged = append(paged, en.ID)
		}
		if page.NextPageToken == "" {
			break
		}
		q = "?key_id=" + k.ID + "&page_size=1&page_token=" + page.NextPageToken
	}
	if len(paged) != 3 || paged[0] != entries[0].ID || paged[2] != put.ID {
		t.Fatalf("paged %v", paged)
	}
	for _, bad := range []string{"?since=yesterday", "?until=2025-13-01T00:00:00Z", "?page_size=0", "?page_size=1001", "?page_token=xyz"} {
		e.want(e.do("GET", "/v1/execution-log"+bad, e.adminToken, nil), 400, client.CodeInvalidRequest)
	}
}

// A walk over a time range, every key at once, pages of 3: each entry once,
// newest first, whatever the cursor and until say together (the cursor
// bounds the page from above when it comes before until; an until before
// the cursor bounds it alone).
func TestLogPagesOverARange(t *testing.T) {
	e := newEnv(t)
	tok, _ := e.mint(e.member, "automation", "stock:read")
	for range 10 {
		e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	}
	all := e.logEntries("?page_size=1000")
	at := func(ts time.Time) string { return url.QueryEscape(ts.Format(time.RFC3339Nano)) }
	since, until := all[len(all)-2].At, all[1].At // the oldest and the newest left out
	q := "?page_size=3&since=" + at(since) + "&until=" + at(until)
	var walked []string
	for page := 0; ; page++ {
		p := decode[client.ExecutionLogResponse](t, e.do("GET", "/v1/execution-log"+q, e.adminToken, nil))
		for _, en := range p.Entries {
			walked = append(walked, en.ID)
		}
		if p.NextPageToken == "" {
			break
		}
		if page == 0 {
			// The same token with an until before its position: only what
			// is before that until.
			early := decode[client.ExecutionLogResponse](t, e.do("GET", "/v1/execution-log?page_size=1000&page_token="+p.NextPageToken+"&until="+at(all[8].At), e.adminToken, nil))
			if len(early.Entries) != len(all)-9 || early.Entries[0].ID != all[9].ID {
				t.Errorf("a token with an earlier until: %d entries from %s, want %d from %s", len(early.Entries), early.Entries[0].ID, len(all)-9, all[9].ID)
			}
		}
		q = "?page_size=3&since=" + at(since) + "&until=" + at(until) + "&page_token=" + p.NextPageToken
	}
	var want []string
	for _, en := range all[2 : len(all)-1] {
		want = append(want, en.ID)
	}
	if fmt.Sprint(walked) != fmt.Sprint(want) {
		t.Fatalf("walked %v\nwant   %v", walked, want)
	}
}

func TestConcurrentRequestsAllLogged(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.admin, "busy", "stock:read")
	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.callStock(tok)
		}()
	}
	wg.Wait()
	entries := e.logEntries("?key_id=" + k.ID)
	if len(entries) != n {
		t.Fatalf("%d entries for %d answered requests", len(entries), n)
	}
	if got := e.getKey(k.ID).LastUsedAt; got == nil || !got.Equal(entries[0].At) {
		t.Fatalf("last_used_at %v, newest entry %v", got, entries[0].At)
	}
}

func TestLastUsedGranularity(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LastUsedGranularity = time.Hour })
	tok, k := e.mint(e.admin, "coarse", "stock:read")
	if e.getKey(k.ID).LastUsedAt != nil {
		t.Fatal("a new key has a last_used_at")
	}
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	first := e.getKey(k.ID).LastUsedAt
	entry := e.logEntries("?key_id=" + k.ID)[0]
	if first == nil || !first.Equal(entry.At.Truncate(time.Hour)) {
		t.Fatalf("last_used_at %v, want %v truncated to the hour", first, entry.At)
	}
	if !entry.At.After(*first) && !entry.At.Equal(*first) {
		t.Fatal("the log is not exact")
	}
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	if got := e.getKey(k.ID).LastUsedAt; !got.Equal(*first) {
		t.Fatalf("moved within the hour: %v -> %v", first, got)
	}
	e.s.Advance(time.Hour)
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	if got := e.getKey(k.ID).LastUsedAt; !got.Equal(first.Add(time.Hour)) {
		t.Fatalf("after an hour: %v, want %v", got, first.Add(time.Hour))
	}
}

func TestClock(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/_emulator/clock", "", nil)
	e.want(r, 200, "")
	before := decode[clockAnswer](t, r).Now
	r = e.do("POST", "/_emulator/clock", "", `{"advance":"1d12h"}`)
	e.want(r, 200, "")
	after := decode[clockAnswer](t, r).Now
	if d := after.Sub(before); d < 36*time.Hour || d > 36*time.Hour+5*time.Second {
		t.Fatalf("advanced by %v, want 36h", d)
	}
	r = e.do("GET", "/v1/me", e.adminToken, nil)
	date, err := http.ParseTime(r.header.Get("Date"))
	if err != nil || date.Sub(time.Now().Add(36*time.Hour)).Abs() > 5*time.Second {
		t.Fatalf("Date %q does not follow the clock", r.header.Get("Date"))
	}
	_, created := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "future", Scopes: []string{"a:b"}})
	if created.APIKey.CreatedAt.Sub(time.Now().Add(36*time.Hour)).Abs() > 5*time.Second {
		t.Fatalf("created_at %v does not follow the clock", created.APIKey.CreatedAt)
	}
	if entries := e.logEntries("?page_size=1"); entries[0].At.Sub(after) < 0 {
		t.Fatalf("log time %v before the advanced clock %v", entries[0].At, after)
	}
	for _, bad := range []string{`{"advance":"-1h"}`, `{"advance":"soon"}`, `{"advance":""}`, `{"back":"1h"}`} {
		e.want(e.do("POST", "/_emulator/clock", "", bad), 400, client.CodeInvalidRequest)
	}

	// The offset survives a restart.
	e.stop()
	e.start(Config{DBPath: e.dbPath, BcryptCost: 4})
	if d := time.Until(e.s.Now()); d < 36*time.Hour-5*time.Second || d > 36*time.Hour+5*time.Second {
		t.Fatalf("after restart the clock is %v ahead, want 36h", d)
	}
	// Without --dev-endpoints the clock is not reachable.
	e.want(e.do("GET", "/_emulator/clock", "", nil), 404, client.CodeNotFound)
	e.want(e.do("POST", "/_emulator/clock", "", `{"advance":"1h"}`), 404, client.CodeNotFound)
}

func TestPathsOutsideTheAPI(t *testing.T) {
	e := newEnv(t)
	logs := e.count("execution_log")
	for _, p := range []string{"/", "/v2/me", "/v1", "/healthz", "/_emulator/other"} {
		e.want(e.do("GET", p, e.adminToken, nil), 404, client.CodeNotFound)
	}
	if e.count("execution_log") != logs {
		t.Fatal("a 404 outside /v1 was logged")
	}
	r := e.do("DELETE", "/v1/orders/9/../10", e.adminToken, nil)
	e.want(r, 200, "")
	if !bytes.Contains(r.body, []byte(`"ok":true`)) {
		t.Fatalf("body %s", r.body)
	}
	if got := e.logEntries("?page_size=1")[0]; got.Path != "/v1/orders/10" || got.Method != "DELETE" {
		t.Fatalf("logged %+v", got)
	}
	e.want(e.do("GET", "/v1/anything", "", nil), 401, client.CodeUnauthenticated)
}

func TestRestartKeepsEverything(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LastUsedGranularity = 0 })
	tok, k := e.mint(e.admin, "durable", "stock:read")
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	_, created := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "idem", Scopes: []string{"a:b"}}, "Idempotency-Key", "keep")
	e.want(e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil), 200, "")
	// The admin key's own last_used_at moves with every listing, so it is
	// left out of the comparison.
	listAll := func() map[string]string {
		r := e.do("GET", "/v1/api-keys?status=all", e.adminToken, nil)
		e.want(r, 200, "")
		m := map[string]string{}
		for _, k := range decode[client.ListKeysResponse](t, r).APIKeys {
			if k.ID != e.adminKey.ID {
				b, _ := json.Marshal(k)
				m[k.ID] = string(b)
			}
		}
		return m
	}
	hashes := func() map[string]string {
		rows, err := e.s.db.Query(`SELECT id, hash FROM api_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string]string{}
		for rows.Next() {
			var id, h string
			rows.Scan(&id, &h)
			m[id] = h
		}
		return m
	}
	keysBefore, hashesBefore := listAll(), hashes()
	logBefore := e.logEntries("?page_size=1000")

	e.stop()
	e.start(Config{DBPath: e.dbPath, BcryptCost: 4})

	// One more entry: the listing that read the log before the restart.
	logAfter := e.logEntries("?page_size=1000")
	if len(logAfter) != len(logBefore)+1 || logAfter[1].ID != logBefore[0].ID || !logAfter[len(logAfter)-1].At.Equal(logBefore[len(logBefore)-1].At) {
		t.Fatalf("log: %d entries before, %d after", len(logBefore), len(logAfter))
	}
	if got := hashes(); len(got) != len(hashesBefore) {
		t.Fatal("hashes lost")
	} else {
		for id, h := range hashesBefore {
			if got[id] != h {
				t.Fatalf("hash of %s changed", id)
			}
		}
	}
	if got := listAll(); fmt.Sprint(got) != fmt.Sprint(keysBefore) {
		t.Fatalf("keys changed across the restart:\n%v\n%v", keysBefore, got)
	}
	if got := e.getKey(k.ID); got.Status != "revoked" || got.LastUsedAt == nil {
		t.Fatal("key state lost")
	}
	r, replay := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "idem", Scopes: []string{"a:b"}}, "Idempotency-Key", "keep")
	e.want(r, 200, "")
	if replay.APIKey.ID != created.APIKey.ID {
		t.Fatal("the idempotency record was lost")
	}
	// A cold cache after the restart: the old plaintext still verifies.
	e.want(e.do("GET", "/v1/me", *created.Plaintext, nil), 200, "")
	e.want(e.do("GET", "/v1/me", tok, nil), 401, client.CodeUnauthenticated)
}

func TestDatabaseHoldsNoPlaintext(t *testing.T) {
	e := newEnv(t)
	plaintexts := []string{e.adminToken, e.memberToken}
	for i := 0; i < 3; i++ {
		_, created := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "secret?", Scopes: []string{"a:b"}}, "Idempotency-Key", string(rune('a'+i)))
		plaintexts = append(plaintexts, *created.Plaintext)
		e.want(e.do("GET", "/v1/stock-levels", *created.Plaintext, nil), 200, "")
	}
	check := func(when string) {
		var all []byte
		for _, suffix := range []string{"", "-wal", "-journal"} {
			b, err := os.ReadFile(e.dbPath + suffix)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		for _, p := range plaintexts {
			secret := p[len(client.LivePrefix)+client.PublicIDLen:]
			if bytes.Contains(all, []byte(p)) || bytes.Contains(all, []byte(secret)) {
				t.Fatalf("%s: the database files hold a plaintext key", when)
			}
		}
		if !bytes.Contains(all, []byte("$2a$04$")) {
			t.Fatalf("%s: no bcrypt hash in the database files", when)
		}
	}
	check("while running")
	e.stop()
	check("after close")
}
