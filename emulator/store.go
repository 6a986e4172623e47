package emulator

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Times are stored as Unix nanoseconds so that ordering and range filters are
// plain integer comparisons and a restart reproduces them exactly.
const schema = `
CREATE TABLE IF NOT EXISTS meta (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workspaces (
	id   TEXT PRIMARY KEY,
	name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
	id           TEXT PRIMARY KEY,
	workspace_id TEXT NOT NULL REFERENCES workspaces(id),
	email        TEXT NOT NULL UNIQUE,
	role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
	scopes       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
	id           TEXT PRIMARY KEY,
	workspace_id TEXT NOT NULL REFERENCES workspaces(id),
	public_id    TEXT NOT NULL UNIQUE,
	prefix       TEXT NOT NULL,
	hash         TEXT NOT NULL,
	name         TEXT NOT NULL,
	description  TEXT NOT NULL DEFAULT '',
	scopes       TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	created_by   TEXT NOT NULL REFERENCES users(id),
	last_used_at INTEGER,
	revoked_at   INTEGER,
	revoked_by   TEXT REFERENCES users(id)
);
CREATE INDEX IF NOT EXISTS api_keys_order ON api_keys(created_at, id);
CREATE TABLE IF NOT EXISTS execution_log (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT NOT NULL UNIQUE,
	at         INTEGER NOT NULL,
	key_id     TEXT NOT NULL,
	key_prefix TEXT NOT NULL,
	method     TEXT NOT NULL,
	path       TEXT NOT NULL,
	status     INTEGER NOT NULL,
	source_ip  TEXT NOT NULL,
	user_agent TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS execution_log_at ON execution_log(at, seq);
CREATE INDEX IF NOT EXISTS execution_log_key ON execution_log(key_id, at, seq);
CREATE TABLE IF NOT EXISTS idempotency (
	user_id    TEXT NOT NULL,
	idem_key   TEXT NOT NULL,
	body_hash  TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, idem_key)
);
`

// openDB opens path, or ":memory:". A file is held exclusively (see
// lockDB): there is no busy timeout, since no other connection may ever
// hold it, and one that does is refused at once.
func openDB(path string) (*sql.DB, error) {
	pragmas := "?_pragma=foreign_keys(1)&_txlock=immediate"
	if path != ":memory:" {
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("database path %q: '?' and '#' are not supported", path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
		// The file holds every key's hash and who called from where:
		// created 0600 here, since SQLite would make it 0644, and SQLite
		// gives its -wal file the database's own mode. Only a new file is
		// opened here: closing a descriptor of a file this process has
		// open in SQLite (through a hard link, say) would drop SQLite's
		// locks on it.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			f.Close()
		case !errors.Is(err, os.ErrExist):
			return nil, fmt.Errorf("database file: %w", err)
		}
		// locking_mode EXCLUSIVE comes before WAL (the _pragma list runs
		// before _journal_mode): the first access then takes the file's
		// exclusive lock, and WAL keeps its index in memory, with no -shm
		// file. FULL keeps every commit across a power loss; group commit
		// in the log writer pays that fsync once per batch rather than per
		// request.
		pragmas += "&_pragma=locking_mode(EXCLUSIVE)&_journal_mode=WAL&_synchronous=FULL"
	}
	db, err := sql.Open("sqlite", path+pragmas)
	if err != nil {
		return nil, err
	}
	// One connection: ":memory:" is per connection, and SQLite takes one
	// writer at a time anyway, so a pool would only add SQLITE_BUSY waits.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, inUse(path, fmt.Errorf("creating schema: %w", err))
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("upgrading schema: %w", err)
	}
	return db, nil
}

// addedColumns are columns a database made by an earlier version may lack:
// CREATE TABLE IF NOT EXISTS leaves an existing table as it was.
var addedColumns = []struct{ table, column, def string }{
	{"api_keys", "description", "TEXT NOT NULL DEFAULT ''"},
}

// migrate adds the columns of addedColumns that the database lacks, so that
// an existing bos.db keeps opening.
func migrate(db *sql.DB) error {
	for _, c := range addedColumns {
		var has bool
		err := db.QueryRow(`SELECT EXISTS(SELECT 1 FROM pragma_table_info(?) WHERE name = ?)`, c.table, c.column).Scan(&has)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		if _, err := db.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.column + ` ` + c.def); err != nil {
			return fmt.Errorf("adding %s.%s: %w", c.table, c.column, err)
		}
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func encodeScopes(scopes []string) string {
	b, _ := json.Marshal(scopes)
	return string(b)
}

func decodeScopes(s string) ([]string, error) {
	var scopes []string
	if err := json.Unmarshal([]byte(s), &scopes); err != nil {
		return nil, fmt.Errorf("stored scopes: %w", err)
	}
	return scopes, nil
}

const keySelect = `
SELECT k.id, k.name, k.description, k.prefix, k.scopes, k.created_at,
       k.created_by, cu.email, cu.role, k.last_used_at, k.revoked_at, k.revoked_by, ru.email, ru.role
FROM api_keys k
JOIN users cu ON cu.id = k.created_by
LEFT JOIN users ru ON ru.id = k.revoked_by`

type rowScanner interface{ Scan(dest ...any) error }

func scanKey(row rowScanner) (client.APIKey, error) {
	var (
		k                   client.APIKey
		scopes              string
		createdAt           int64
		lastUsed, revokedAt sql.NullInt64
		revokedBy, revEmail sql.NullString
		revRole             sql.NullString
	)
	err := row.Scan(&k.ID, &k.Name, &k.Description, &k.Prefix, &scopes, &createdAt,
		&k.CreatedBy.ID, &k.CreatedBy.Email, &k.CreatedBy.Role, &lastUsed, &revokedAt, &revokedBy, &revEmail, &revRole)
	if err != nil {
		return client.APIKey{}, err
	}
	if k.Scopes, err = decodeScopes(scopes); err != nil {
		return client.APIKey{}, err
	}
	k.CreatedAt = fromNanos(createdAt)
	k.LastUsedAt = nullTime(lastUsed)
	k.RevokedAt = nullTime(revokedAt)
	k.Status = client.StatusActive
	if revokedAt.Valid {
		k.Status = client.StatusRevoked
	}
	if revokedBy.Valid {
		k.RevokedBy = &client.User{ID: revokedBy.String, Email: revEmail.String, Role: revRole.String}
	}
	return k, nil
}

// errNotFound is returned by lookups of a row that does not exist.
var errNotFound = errors.New("not found")

func loadKey(ctx context.Context, q querier, id string) (client.APIKey, error) {
	k, err := scanKey(q.QueryRowContext(ctx, keySelect+` WHERE k.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return client.APIKey{}, errNotFound
	}
	return k, err
}

func loadWorkspace(ctx context.Context, q querier) (client.Workspace, error) {
	var ws client.Workspace
	err := q.QueryRowContext(ctx, `SELECT id, name FROM workspaces ORDER BY id LIMIT 1`).Scan(&ws.ID, &ws.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return ws, errNotFound
	}
	return ws, err
}

// ensureWorkspace creates the emulator's single workspace on first start.
func ensureWorkspace(ctx context.Context, db *sql.DB, now time.Time) (client.Workspace, error) {
	ws, err := loadWorkspace(ctx, db)
	if !errors.Is(err, errNotFound) {
		return ws, err
	}
	ws = client.Workspace{ID: newID("ws_", now), Name: "BOS workspace"}
	_, err = db.ExecContext(ctx, `INSERT INTO workspaces (id, name) VALUES (?, ?)`, ws.ID, ws.Name)
	return ws, err
}

func loadMeta(ctx context.Context, db *sql.DB, name string) (string, bool, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

func saveMeta(ctx context.Context, db *sql.DB, name, value string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES (?, ?)
		ON CONFLICT(name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

const insertLogSQL = `INSERT INTO execution_log
	(id, at, key_id, key_prefix, method, path, status, source_ip, user_agent)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

func logEntryArgs(e client.ExecutionLogEntry) []any {
	return []any{e.ID, nanos(e.At), e.KeyID, e.KeyPrefix, e.Method, e.Path, e.Status, e.SourceIP, e.UserAgent}
}

func insertLogEntry(ctx context.Context, q querier, e client.ExecutionLogEntry) error {
	_, err := q.ExecContext(ctx, insertLogSQL, logEntryArgs(e)...)
	return err
}

// touchKeySQL moves last_used_at forward only, so batches committed out of
// arrival order, or a coarse granularity, never move it back.
const touchKeySQL = `UPDATE api_keys SET last_used_at = ?1
	WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`

func touchKey(ctx context.Context, q querier, keyID string, at time.Time) error {
	_, err := q.ExecContext(ctx, touchKeySQL, nanos(at), keyID)
	return err
}
