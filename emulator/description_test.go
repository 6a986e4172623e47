package emulator

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/client"
	"golang.org/x/crypto/bcrypt"
)

func TestDescription(t *testing.T) {
	e := newEnv(t)
	lineage := "Rotation of pa_live_AB7K2XYZ (Nightly stock sync (2025)) by ana@example.com on 2026-11-30: scheduled"
	r, created := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "Nightly stock sync (2026)", Scopes: []string{"stock:read"}, Description: lineage})
	e.want(r, 201, "")
	if created.APIKey.Description != lineage || e.getKey(created.APIKey.ID).Description != lineage {
		t.Fatalf("description not kept: %+v", created.APIKey)
	}
	list := decode[client.ListKeysResponse](t, e.do("GET", "/v1/api-keys", e.adminToken, nil))
	found := false
	for _, k := range list.APIKeys {
		found = found || (k.ID == created.APIKey.ID && k.Description == lineage)
	}
	if !found {
		t.Fatal("the list does not carry the description")
	}
	// None given: the answer still carries it, as "".
	for _, body := range []string{
		string(e.do("GET", "/v1/api-keys/"+e.memberKey.ID, e.adminToken, nil).body),
		string(e.do("GET", "/v1/me", e.memberToken, nil).body),
	} {
		if !strings.Contains(body, `"description":""`) {
			t.Fatalf("a key without a description lacks \"description\":\"\": %s", body)
		}
	}

	// At most 500 characters, counted as characters, not bytes.
	keys := e.count("api_keys")
	r, _ = e.createKey(e.adminToken, client.CreateKeyRequest{Name: "long", Scopes: []string{"a:b"}, Description: strings.Repeat("é", 501)})
	e.want(r, 422, client.CodeValidationFailed)
	if !strings.Contains(r.errMessage(), "500") || e.count("api_keys") != keys {
		t.Fatalf("501 characters: %s (keys %d, want %d)", r.body, e.count("api_keys"), keys)
	}
	r, _ = e.createKey(e.adminToken, client.CreateKeyRequest{Name: "long", Scopes: []string{"a:b"}, Description: strings.Repeat("é", 500)})
	e.want(r, 201, "")
	r, _ = e.createKey(e.adminToken, client.CreateKeyRequest{Name: "bell", Scopes: []string{"a:b"}, Description: "a\x07b"})
	e.want(r, 422, client.CodeValidationFailed)

	// The description is part of what an Idempotency-Key stands for.
	req := client.CreateKeyRequest{Name: "successor", Scopes: []string{"a:b"}, Description: "by ana"}
	r, first := e.createKey(e.adminToken, req, headerIdempotent, "idem-desc")
	e.want(r, 201, "")
	other := req
	other.Description = "by ben"
	r, _ = e.createKey(e.adminToken, other, headerIdempotent, "idem-desc")
	e.want(r, 422, client.CodeValidationFailed)
	other.Description = ""
	r, _ = e.createKey(e.adminToken, other, headerIdempotent, "idem-desc")
	e.want(r, 422, client.CodeValidationFailed)
	r, replay := e.createKey(e.adminToken, req, headerIdempotent, "idem-desc")
	e.want(r, 200, "")
	if replay.APIKey.ID != first.APIKey.ID || replay.APIKey.Description != "by ana" {
		t.Fatalf("replay %+v", replay.APIKey)
	}
}

// A database made before keys had a description still opens; its keys
// describe themselves as "" and new keys keep theirs.
func TestDatabaseWithoutDescriptionColumnOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old := strings.Replace(schema, "\tdescription  TEXT NOT NULL DEFAULT '',\n", "", 1)
	if old == schema {
		t.Fatal("the schema no longer declares description as this test expects")
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	for _, q := range []string{
		old,
		`INSERT INTO workspaces (id, name) VALUES ('ws_1', 'old')`,
		`INSERT INTO users (id, workspace_id, email, role, scopes) VALUES ('usr_1', 'ws_1', 'ana@example.com', 'admin', '[]')`,
		`INSERT INTO api_keys (id, workspace_id, public_id, prefix, hash, name, scopes, created_at, created_by)
			VALUES ('key_old', 'ws_1', 'AB7K2XYZ', 'pa_live_AB7K2XYZ', '` + string(hash) + `', 'old key', '["a:b"]', 1, 'usr_1')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := New(Config{DBPath: path, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatalf("an old database does not open: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	k, err := loadKey(ctx, s.db, "key_old")
	if err != nil || k.Description != "" || k.Name != "old key" {
		t.Fatalf("old key: %+v, %v", k, err)
	}
	_, nk, err := s.mintKey(ctx, nil, "usr_1", client.CreateKeyRequest{Name: "new", Scopes: []string{"a:b"}, Description: "lineage"}, s.Now(), nil)
	if err != nil || nk.Description != "lineage" {
		t.Fatalf("new key in the upgraded database: %+v, %v", nk, err)
	}
}
