package emulator

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// benchServer is an emulator on a file database (WAL, synchronous=FULL, as
// bos-emulator runs) with one admin and one automation key at cost.
func benchServer(b *testing.B, cost int) (*Server, string) {
	b.Helper()
	s, err := New(Config{DBPath: filepath.Join(b.TempDir(), "bos.db"), BcryptCost: cost})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	u, err := s.CreateUser(context.Background(), "ana@example.com", roleAdmin, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := s.MintKey(context.Background(), u.ID, "automation", []string{"stock:read"}, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	return s, tok
}

func automationRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/stock-levels", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// BenchmarkServeWarm is one automation call through the whole handler, the
// execution-log entry committed, from parallel clients: group commit's case.
func BenchmarkServeWarm(b *testing.B) {
	s, tok := benchServer(b, 4)
	h := s.Handler()
	h.ServeHTTP(httptest.NewRecorder(), automationRequest(tok))
	st0 := s.Stats()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, automationRequest(tok))
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
	b.StopTimer()
	st := s.Stats()
	if c := st.LogCommits - st0.LogCommits; c > 0 {
		b.ReportMetric(float64(st.LogEntries-st0.LogEntries)/float64(c), "entries/commit")
	}
}

// BenchmarkAuthenticateWarm is the authentication of a key already proven:
// a hash and a map lookup, no bcrypt, no database.
func BenchmarkAuthenticateWarm(b *testing.B) {
	s, tok := benchServer(b, 4)
	r := automationRequest(tok)
	if _, err := s.authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.authenticate(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuthenticateCold is the first use of a key at the default cost:
// the database read and one bcrypt comparison.
func BenchmarkAuthenticateCold(b *testing.B) {
	s, tok := benchServer(b, DefaultBcryptCost)
	r := automationRequest(tok)
	sum := sha256.Sum256([]byte(tok))
	b.ResetTimer()
	for range b.N {
		s.cache.mu.Lock()
		delete(s.cache.bySum, sum)
		s.cache.mu.Unlock()
		if _, err := s.authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogWriter appends entries from parallel writers and waits for
// each to be committed, with synchronous=FULL (what the emulator runs:
// durable across a power loss) and NORMAL (durable across a process crash
// only), to show what the fsync per group commit costs; and with and without
// the re-check of each batch's keys against a revoke.
func BenchmarkLogWriter(b *testing.B) {
	for _, c := range []struct {
		sync    string
		recheck bool
	}{{"FULL", true}, {"FULL", false}, {"NORMAL", true}} {
		sync := c.sync
		b.Run(fmt.Sprintf("synchronous=%s/recheck=%v", sync, c.recheck), func(b *testing.B) {
			db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "log.db")+
				"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous("+sync+")&_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			db.SetMaxOpenConns(1)
			defer db.Close()
			if _, err := db.Exec(schema); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO workspaces VALUES ('ws_1', 'w');
				INSERT INTO users VALUES ('usr_1', 'ws_1', 'a@example.com', 'admin', '[]');
				INSERT INTO api_keys (id, workspace_id, public_id, prefix, hash, name, scopes, created_at, created_by)
				VALUES ('key_1', 'ws_1', 'AAAAAAAA', 'pa_live_AAAAAAAA', '', 'k', '[]', 0, 'usr_1')`); err != nil {
				b.Fatal(err)
			}
			w, err := startLogWriter(db, 0, func(string) bool { return false })
			if err != nil {
				b.Fatal(err)
			}
			defer w.stop()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					now := time.Now()
					refused, err := w.append(client.ExecutionLogEntry{ID: newID("exe_", now), At: now, KeyID: "key_1",
						KeyPrefix: "pa_live_AAAAAAAA", Method: "GET", Path: "/v1/stock-levels", Status: 200,
						SourceIP: "127.0.0.1", UserAgent: "bench"}, true, c.recheck)
					if err != nil || refused {
						b.Error(err, refused)
						return
					}
				}
			})
			b.StopTimer()
			if c := w.commits.Load(); c > 0 {
				b.ReportMetric(float64(w.entries.Load())/float64(c), "entries/commit")
			}
		})
	}
}

// BenchmarkListKeysPage serves one page of 1000 keys from a workspace of
// 10,000, the request `plana keys list` repeats page after page.
func BenchmarkListKeysPage(b *testing.B) {
	s, _ := benchServer(b, 4)
	ctx := context.Background()
	res, err := s.SeedBulk(ctx, 10000, 0)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := s.MintKey(ctx, res.User.ID, "admin", []string{client.ScopeManage}, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/v1/api-keys?page_size=1000", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	h.ServeHTTP(httptest.NewRecorder(), req())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req())
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}
