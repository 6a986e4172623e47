package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
	"golang.org/x/crypto/bcrypt"
)

// BulkResult says what SeedBulk added.
type BulkResult struct {
	User    client.User
	Keys    int
	Entries int
}

const bulkEmail = "bulk@example.com"

// SeedBulk adds keys keys issued by a new admin, bulk@example.com, created
// over the last two years, and entries execution-log entries spread round
// robin over them across the last 30 days, in one transaction of direct
// inserts: a workspace at scale for benchmarks in seconds rather than hours.
//
// Hashing 100,000 keys at cost 12 would take hours, so every bulk key stores
// the same hash of a random secret at bcrypt's minimum cost, and the secret
// is thrown away: the bulk keys exist to be listed and logged, and none of
// them can ever authenticate.
func (s *Server) SeedBulk(ctx context.Context, keys, entries int) (BulkResult, error) {
	if keys < 1 || entries < 0 {
		return BulkResult{}, fmt.Errorf("emulator: bulk seed of %d keys and %d entries: want at least one key", keys, entries)
	}
	var exists bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM users WHERE email = ?)`, bulkEmail).Scan(&exists); err != nil {
		return BulkResult{}, err
	}
	if exists {
		return BulkResult{}, errors.New("emulator: this database already holds a bulk seed")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(randomBase62(client.SecretLen)), bcrypt.MinCost)
	if err != nil {
		return BulkResult{}, err
	}
	u, err := s.CreateUser(ctx, bulkEmail, roleAdmin, nil)
	if err != nil {
		return BulkResult{}, err
	}
	now := s.Now()
	const (
		keySpan = 730 * 24 * time.Hour
		logSpan = 30 * 24 * time.Hour
	)
	keyStep := keySpan / time.Duration(keys)
	logStep := time.Duration(0)
	if entries > 0 {
		logStep = logSpan / time.Duration(entries)
	}
	entryAt := func(j int) time.Time { return now.Add(-logSpan + time.Duration(j)*logStep) }
	ids := make([]string, keys)
	prefixes := make([]string, keys)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO api_keys
			(id, workspace_id, public_id, prefix, hash, name, scopes, created_at, created_by, last_used_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		scopes := encodeScopes([]string{"stock:read"})
		for i := range keys {
			created := now.Add(-keySpan + time.Duration(i)*keyStep)
			publicID := bulkPublicID(i)
			ids[i] = newID("key_", created)
			prefixes[i] = client.LivePrefix + publicID
			// Entry j belongs to key j % keys, so key i's last is the
			// largest such j below entries.
			var lastUsed any
			if i < entries {
				lastUsed = nanos(entryAt(i + (entries-1-i)/keys*keys))
			}
			if _, err := ins.ExecContext(ctx, ids[i], s.ws.ID, publicID, prefixes[i], string(hash),
				fmt.Sprintf("bulk key %06d", i), scopes, nanos(created), u.ID, lastUsed); err != nil {
				return err
			}
		}
		log, err := tx.PrepareContext(ctx, `INSERT INTO execution_log
			(id, at, key_id, key_prefix, method, path, status, source_ip, user_agent)
			VALUES (?, ?, ?, ?, 'GET', '/v1/stock-levels', 200, '192.0.2.10', 'bulk-seed/1')`)
		if err != nil {
			return err
		}
		defer log.Close()
		for j := range entries {
			at := entryAt(j)
			if _, err := log.ExecContext(ctx, newID("exe_", at), nanos(at), ids[j%keys], prefixes[j%keys]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return BulkResult{}, fmt.Errorf("emulator: bulk seed: %w", err)
	}
	return BulkResult{User: u, Keys: keys, Entries: entries}, nil
}

// bulkPublicID spells i in base62 after a "Z": distinct for every i, and
// mintKey's collision check keeps later random ids clear of them.
func bulkPublicID(i int) string {
	b := []byte("Z0000000")[:client.PublicIDLen]
	for p := len(b) - 1; p > 0 && i > 0; p-- {
		b[p] = client.Base62[i%len(client.Base62)]
		i /= len(client.Base62)
	}
	return string(b)
}
