package emulator

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/plana-cli/plana/client"
)

func TestSeedBulk(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keysBefore, logBefore := e.count("api_keys"), e.count("execution_log")
	res, err := e.s.SeedBulk(ctx, 250, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.count("api_keys") - keysBefore; got != 250 || res.Keys != 250 {
		t.Fatalf("bulk keys: %d in the table, %d reported, want 250", got, res.Keys)
	}
	if got := e.count("execution_log") - logBefore; got != 1000 || res.Entries != 1000 {
		t.Fatalf("bulk entries: %d in the table, %d reported, want 1000", got, res.Entries)
	}

	// Every page of the list is well formed and the bulk keys are in it.
	seen := 0
	tok := ""
	for {
		r := e.do("GET", "/v1/api-keys?page_size=100&page_token="+tok, e.adminToken, nil)
		e.want(r, 200, "")
		page := decode[client.ListKeysResponse](t, r)
		for _, k := range page.APIKeys {
			if k.CreatedBy.Email == bulkEmail {
				seen++
				if len(k.Prefix) != len(client.LivePrefix)+client.PublicIDLen {
					t.Fatalf("bulk key prefix %q has the wrong shape", k.Prefix)
				}
			}
		}
		if tok = page.NextPageToken; tok == "" {
			break
		}
	}
	if seen != 250 {
		t.Fatalf("listed %d bulk keys, want 250", seen)
	}

	// last_used_at is the latest of each key's entries: 1000 entries over
	// 250 keys is four each.
	var mismatched int
	if err := e.s.db.QueryRow(`SELECT count(*) FROM api_keys k WHERE k.created_by = ? AND
		k.last_used_at IS NOT (SELECT max(at) FROM execution_log l WHERE l.key_id = k.id)`, res.User.ID).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 {
		t.Fatalf("%d bulk keys have a last_used_at other than their last entry", mismatched)
	}
	if _, err := e.s.SeedBulk(ctx, 1, 0); err == nil {
		t.Fatal("a second bulk seed was accepted")
	}
}

func TestBulkPublicIDsDistinct(t *testing.T) {
	seen := map[string]int{}
	for i := range 200000 {
		id := bulkPublicID(i)
		if len(id) != client.PublicIDLen {
			t.Fatalf("bulkPublicID(%d) = %q", i, id)
		}
		if j, dup := seen[id]; dup {
			t.Fatalf("bulkPublicID(%d) = bulkPublicID(%d) = %q", i, j, id)
		}
		seen[id] = i
	}
}

func TestStatsEndpoint(t *testing.T) {
	e := newEnv(t)
	stats := func() Stats {
		r := e.do("GET", "/_emulator/stats", "", nil)
		e.want(r, 200, "")
		return decode[Stats](t, r)
	}
	_, resp := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "stats", Scopes: []string{"stock:read"}})
	key := *resp.Plaintext
	before := stats()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.do("GET", "/v1/stock-levels?i="+strconv.Itoa(i), key, nil)
		}()
	}
	wg.Wait()
	after := stats()
	if got := after.BcryptCalls - before.BcryptCalls; got != 1 {
		t.Fatalf("bcrypt calls for 20 requests with one new key: %d, want 1", got)
	}
	if got := after.LogEntries - before.LogEntries; got != 20 {
		t.Fatalf("log entries: %d, want 20", got)
	}
	if c := after.LogCommits - before.LogCommits; c < 1 || c > 20 {
		t.Fatalf("log commits: %d for 20 entries", c)
	}
	e.want(e.do("POST", "/_emulator/stats", "", nil), 405, client.CodeInvalidRequest)
}

func TestProfileEndpoint(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/_emulator/pprof/profile?seconds=1", "", nil)
	e.want(r, 200, "")
	// A profile is gzipped protobuf.
	if len(r.body) < 2 || r.body[0] != 0x1f || r.body[1] != 0x8b {
		t.Fatalf("the answer is not a gzipped profile: % x", r.body[:min(len(r.body), 8)])
	}
	for _, bad := range []string{"", "0", "61", "x"} {
		e.want(e.do("GET", "/_emulator/pprof/profile?seconds="+bad, "", nil), 400, client.CodeInvalidRequest)
	}
}
