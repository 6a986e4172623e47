package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"golang.org/x/crypto/bcrypt"
)

// ErrAlreadySeeded is returned by SeedDemo on a database that already holds
// the demo workspace: it re-issues nothing, so no plaintext exists to hand out.
var ErrAlreadySeeded = errors.New("emulator: the demo workspace is already seeded")

// CreateUser adds a user to the workspace. role is "admin" or "member";
// scopes are what a member may grant (an admin holds every scope).
func (s *Server) CreateUser(ctx context.Context, email, role string, scopes []string) (client.User, error) {
	if role != roleAdmin && role != roleMember {
		return client.User{}, fmt.Errorf("emulator: role %q: want admin or member", role)
	}
	if !strings.Contains(email, "@") {
		return client.User{}, fmt.Errorf("emulator: %q is not an email address", email)
	}
	for _, sc := range scopes {
		if !scopePattern.MatchString(sc) {
			return client.User{}, fmt.Errorf("emulator: scope %q is not of the form resource:action", sc)
		}
	}
	if scopes == nil {
		scopes = []string{}
	}
	u := client.User{ID: newID("usr_", s.Now()), Email: email, Role: role}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, workspace_id, email, role, scopes) VALUES (?, ?, ?, ?, ?)`,
		u.ID, s.ws.ID, email, role, encodeScopes(scopes))
	if err != nil {
		return client.User{}, fmt.Errorf("emulator: creating user %s: %w", email, err)
	}
	return u, nil
}

// SetRole changes a user's role, as an admin of the workspace would: the
// keys the user issued show the new role at once, and the user's keys act
// with it from their next request.
func (s *Server) SetRole(ctx context.Context, userID, role string) error {
	if role != roleAdmin && role != roleMember {
		return fmt.Errorf("emulator: role %q: want admin or member", role)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, userID)
	if err != nil {
		return fmt.Errorf("emulator: setting %s's role: %w", userID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("emulator: no user %s", userID)
	}
	// Verified keys carry their user's role: they are proven again.
	s.cache.forgetProven()
	return nil
}

// MintKey issues a key for userID directly, bypassing HTTP and the role
// checks, stamped createdAt (the emulator's now when zero). The plaintext is
// returned once and not kept.
func (s *Server) MintKey(ctx context.Context, userID, name string, scopes []string, createdAt time.Time) (string, client.APIKey, error) {
	req, msg := validateCreate(client.CreateKeyRequest{Name: name, Scopes: scopes})
	if msg != "" {
		return "", client.APIKey{}, fmt.Errorf("emulator: %s", msg)
	}
	if createdAt.IsZero() {
		createdAt = s.Now()
	}
	return s.mintKey(ctx, nil, userID, req, createdAt.UTC(), nil)
}

type idempotencyRecord struct {
	userID, key, bodyHash string
}

// mintKey draws a key, stores its bcrypt hash (and the idempotency record,
// in the same transaction) and returns the plaintext. bcrypt runs before the
// transaction so the slow hash never holds the database. With a caller (an
// HTTP create) the transaction re-checks the caller's key first, and fails
// with errCallerRevoked if it was revoked meanwhile.
func (s *Server) mintKey(ctx context.Context, c *caller, userID string, req client.CreateKeyRequest, createdAt time.Time, idem *idempotencyRecord) (string, client.APIKey, error) {
	for attempt := 0; ; attempt++ {
		publicID := randomBase62(client.PublicIDLen)
		plaintext := client.FormatKey("live", publicID, randomBase62(client.SecretLen))
		hash, err := bcrypt.GenerateFromPassword([]byte(plaintext), s.cfg.BcryptCost)
		if err != nil {
			return "", client.APIKey{}, err
		}
		id := newID("key_", createdAt)
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if c != nil {
				if err := s.recheckCaller(ctx, tx, c); err != nil {
					return err
				}
			}
			var taken bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM api_keys WHERE public_id = ?)`, publicID).Scan(&taken); err != nil {
				return err
			}
			if taken {
				return errPublicIDTaken
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys
				(id, workspace_id, public_id, prefix, hash, name, description, scopes, created_at, created_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, s.ws.ID, publicID, client.LivePrefix+publicID, string(hash), req.Name, req.Description,
				encodeScopes(req.Scopes), nanos(createdAt), userID); err != nil {
				return err
			}
			if idem == nil {
				return nil
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO idempotency (user_id, idem_key, body_hash, key_id, created_at)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, idem_key) DO UPDATE SET
				body_hash = excluded.body_hash, key_id = excluded.key_id, created_at = excluded.created_at`,
				idem.userID, idem.key, idem.bodyHash, id, nanos(createdAt))
			return err
		})
		// 62^8 public ids make a collision rare; a few redraws make it moot.
		if errors.Is(err, errPublicIDTaken) && attempt < 5 {
			continue
		}
		if err != nil {
			return "", client.APIKey{}, fmt.Errorf("storing key: %w", err)
		}
		k, err := loadKey(ctx, s.db, id)
		return plaintext, k, err
	}
}

var errPublicIDTaken = errors.New("public id taken")

func (s *Server) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// SeedResult holds the plaintexts SeedDemo issued: the admin's management
// key and the key the demo automation ("Nightly stock sync (2025)") uses.
type SeedResult struct {
	AdminToken, AutomationKey string
}

const (
	demoWorkspace = "Acme Retail"
	demoAdmin     = "ana@example.com"
	demoMember    = "ben@example.com"
)

// demoMemberScopes are the member's management key's: enough to list every
// key, create keys it may grant and revoke its own, as a member of a team
// that runs its own automation would hold.
var demoMemberScopes = []string{client.ScopeManage, "stock:read"}

// SeedDemoMember issues the demo member's management key, "ben's plana
// (2026)" with keys:manage and stock:read, and returns its plaintext, so
// that the role rules can be tried as the member: it creates keys only with
// scopes it holds and revokes only keys it issued (403 otherwise). Call it
// after SeedDemo. The demo issues it only on request: a management key that
// nobody holds would only be one more key in the member's offboarding.
func (s *Server) SeedDemoMember(ctx context.Context) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM users WHERE email = ? AND role = ?`, demoMember, roleMember).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("emulator: no demo member %s: seed the demo first", demoMember)
	}
	if err != nil {
		return "", err
	}
	tok, _, err := s.MintKey(ctx, id, "ben's plana (2026)", demoMemberScopes, s.Now().Add(-14*24*time.Hour))
	return tok, err
}

// SeedDemo fills an unseeded database with the demo workspace: an admin and a
// member, and keys of various ages issued by both, one over a year old with
// a month of nightly calls, one never used, one revoked; the others have
// weeks of their own usual calls (demoHistory), a baseline for an audit.
func (s *Server) SeedDemo(ctx context.Context) (SeedResult, error) {
	var seeded bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM users WHERE email = ?)`, demoAdmin).Scan(&seeded); err != nil {
		return SeedResult{}, err
	}
	if seeded {
		return SeedResult{}, ErrAlreadySeeded
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE workspaces SET name = ? WHERE id = ?`, demoWorkspace, s.ws.ID); err != nil {
		return SeedResult{}, err
	}
	s.ws.Name = demoWorkspace
	now := s.Now()
	ana, err := s.CreateUser(ctx, demoAdmin, roleAdmin, nil)
	if err != nil {
		return SeedResult{}, err
	}
	ben, err := s.CreateUser(ctx, demoMember, roleMember, []string{"stock:read", "reports:read", client.ScopeManage})
	if err != nil {
		return SeedResult{}, err
	}

	var res SeedResult
	mint := func(user client.User, name string, scopes []string, age time.Duration) (string, client.APIKey, error) {
		return s.MintKey(ctx, user.ID, name, scopes, now.Add(-age))
	}
	const day = 24 * time.Hour
	var admin, nightly, webhook, legacy client.APIKey
	if res.AdminToken, admin, err = mint(ana, "plana admin (2026)", []string{client.ScopeManage}, 21*day); err != nil {
		return SeedResult{}, err
	}
	if res.AutomationKey, nightly, err = mint(ana, "Nightly stock sync (2025)", []string{"stock:read", "stock:write"}, 395*day); err != nil {
		return SeedResult{}, err
	}
	if _, webhook, err = mint(ben, "Webhook relay", []string{"orders:write"}, 122*day); err != nil {
		return SeedResult{}, err
	}
	if _, _, err = mint(ben, "Reporting export (2026)", []string{"reports:read"}, 9*day); err != nil {
		return SeedResult{}, err
	}
	if _, legacy, err = mint(ana, "Legacy import (2024)", []string{"stock:write"}, 700*day); err != nil {
		return SeedResult{}, err
	}

	var entries []client.ExecutionLogEntry
	call := func(k client.APIKey, at time.Time, method, path, ip, ua string) {
		entries = append(entries, client.ExecutionLogEntry{
			ID: newID("exe_", at), At: at, KeyID: k.ID, KeyPrefix: k.Prefix,
			Method: method, Path: path, Status: http.StatusOK, SourceIP: ip, UserAgent: ua,
		})
	}
	// Nightly at 02:00 UTC for the last 30 days, the latest run included.
	lastRun := now.Truncate(day).Add(2 * time.Hour)
	if lastRun.Add(10 * time.Second).After(now) {
		lastRun = lastRun.Add(-day)
	}
	for i := 29; i >= 0; i-- {
		run := lastRun.Add(-time.Duration(i) * day)
		call(nightly, run.Add(3*time.Second), "GET", "/v1/stock-levels", "203.0.113.7", "stock-sync/1.4")
		call(nightly, run.Add(9*time.Second), "PUT", "/v1/stock-levels", "203.0.113.7", "stock-sync/1.4")
	}
	// Hourly for the last 2 days.
	lastHour := now.Truncate(time.Hour).Add(17 * time.Second)
	if lastHour.After(now) {
		lastHour = lastHour.Add(-time.Hour)
	}
	for i := 47; i >= 0; i-- {
		call(webhook, lastHour.Add(-time.Duration(i)*time.Hour), "POST", "/v1/orders/webhooks", "198.51.100.23", "webhook-relay/2.0")
	}
	// The legacy import's last days before it was retired.
	legacyRevoked := now.Add(-200 * day)
	for i := 3; i >= 1; i-- {
		call(legacy, legacyRevoked.Add(-time.Duration(i)*day), "POST", "/v1/stock-imports", "192.0.2.44", "legacy-import/0.9")
	}
	entries = append(entries, demoHistory(now, admin, webhook)...)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range entries {
			if err := insertLogEntry(ctx, tx, e); err != nil {
				return err
			}
			if err := touchKey(ctx, tx, e.KeyID, e.At); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE id = ?`,
			nanos(legacyRevoked), ana.ID, legacy.ID)
		return err
	})
	if err != nil {
		return SeedResult{}, fmt.Errorf("emulator: seeding the log: %w", err)
	}
	return res, nil
}
