package emulator

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
)

const (
	maxNameLen       = 200
	maxDescLen       = 500
	maxScopes        = 64
	maxScopeLen      = 100
	maxIdemKeyLen    = 255
	idempotencyTTL   = 24 * time.Hour
	headerReplayed   = "Idempotent-Replayed"
	headerIdempotent = "Idempotency-Key"
)

var scopePattern = regexp.MustCompile(`^[a-z][a-z_]*:[a-z][a-z_]*$`)

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	where := []string{}
	args := []any{}
	switch st := q.Get("status"); st {
	case "", client.StatusActive:
		where = append(where, "k.revoked_at IS NULL")
	case client.StatusRevoked:
		where = append(where, "k.revoked_at IS NOT NULL")
	case client.StatusAll:
	default:
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "status must be active, revoked or all")
		return
	}
	size, ok := pageSize(w, q.Get("page_size"))
	if !ok {
		return
	}
	if tok := q.Get("page_token"); tok != "" {
		at, id, ok := decodeCursor(tok)
		if !ok {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "invalid page_token")
			return
		}
		where = append(where, "(k.created_at > ? OR (k.created_at = ? AND k.id > ?))")
		args = append(args, at, at, id)
	}
	keys, next, err := queryPage(r.Context(), s.db, keySelect, where, args, "k.created_at, k.id", size,
		func(rows *sql.Rows) (client.APIKey, error) { return scanKey(rows) },
		func(k client.APIKey) string { return encodeCursor(nanos(k.CreatedAt), k.ID) })
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.ListKeysResponse{APIKeys: keys, NextPageToken: next})
}

func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request, id string) {
	k, err := loadKey(r.Context(), s.db, id)
	if errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, client.CodeNotFound, "no API key with that id")
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// validateCreate returns the request with scopes deduplicated, or a message
// for a 422.
func validateCreate(req client.CreateKeyRequest) (client.CreateKeyRequest, string) {
	if msg := checkText("name", req.Name, maxNameLen, false); msg != "" {
		return req, msg
	}
	if strings.TrimSpace(req.Name) == "" {
		return req, "name must not be blank"
	}
	if msg := checkText("description", req.Description, maxDescLen, true); msg != "" {
		return req, msg
	}
	if len(req.Scopes) == 0 {
		return req, "scopes must list at least one scope"
	}
	if len(req.Scopes) > maxScopes {
		return req, fmt.Sprintf("at most %d scopes", maxScopes)
	}
	seen := map[string]bool{}
	var scopes []string
	for _, sc := range req.Scopes {
		if len(sc) > maxScopeLen || !scopePattern.MatchString(sc) {
			return req, fmt.Sprintf("scope %q is not of the form resource:action (lowercase letters and _)", truncate(sc, maxScopeLen))
		}
		if !seen[sc] {
			seen[sc] = true
			scopes = append(scopes, sc)
		}
	}
	req.Scopes = scopes
	return req, ""
}

func checkText(field, v string, max int, multiline bool) string {
	if !utf8.ValidString(v) {
		return field + " must be valid UTF-8"
	}
	n := utf8.RuneCountInString(v)
	if (!multiline && n == 0) || n > max {
		if multiline {
			return fmt.Sprintf("%s must be at most %d characters", field, max)
		}
		return fmt.Sprintf("%s must be 1 to %d characters", field, max)
	}
	for _, c := range v {
		if unicode.IsControl(c) && !(multiline && (c == '\n' || c == '\t')) {
			return field + " must not contain control characters"
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdemKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] == 0x7f {
			return false
		}
	}
	return true
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request, c *caller) {
	idem, hasIdem := "", false
	if vals := r.Header.Values(headerIdempotent); len(vals) > 0 {
		if len(vals) > 1 || !validIdempotencyKey(vals[0]) {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest,
				fmt.Sprintf("Idempotency-Key must be 1 to %d characters without control characters", maxIdemKeyLen))
			return
		}
		idem, hasIdem = vals[0], true
	}
	var req client.CreateKeyRequest
	if !decodeBody(w, r, &req) {
		return
	}
	fingerprint := requestFingerprint(req)
	req, msg := validateCreate(req)
	if msg != "" {
		writeError(w, http.StatusUnprocessableEntity, client.CodeValidationFailed, msg)
		return
	}
	for _, sc := range req.Scopes {
		if !c.holdsScope(sc) {
			writeError(w, http.StatusForbidden, client.CodeForbidden, fmt.Sprintf("you cannot grant scope %q: you do not hold it", sc))
			return
		}
	}

	ctx := r.Context()
	if hasIdem {
		slot := c.user.ID + "\x00" + idem
		if !s.acquireSlot(slot) {
			writeError(w, http.StatusConflict, client.CodeConflict, "a request with this Idempotency-Key is still in progress; retry later")
			return
		}
		defer s.releaseSlot(slot)
		var storedHash, keyID string
		var createdAt int64
		err := s.db.QueryRowContext(ctx, `SELECT body_hash, key_id, created_at FROM idempotency
			WHERE user_id = ? AND idem_key = ?`, c.user.ID, idem).Scan(&storedHash, &keyID, &createdAt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			s.internalError(w, err)
			return
		case c.at.Sub(fromNanos(createdAt)) >= idempotencyTTL:
			// Expired: the key is free for a new request.
		case storedHash != fingerprint:
			writeError(w, http.StatusUnprocessableEntity, client.CodeValidationFailed,
				"this Idempotency-Key was used with a different request body")
			return
		default:
			k, err := loadKey(ctx, s.db, keyID)
			if err != nil {
				s.internalError(w, err)
				return
			}
			w.Header().Set(headerReplayed, "true")
			writeJSON(w, http.StatusOK, client.CreateKeyResponse{APIKey: k})
			return
		}
	}

	var record *idempotencyRecord
	if hasIdem {
		record = &idempotencyRecord{userID: c.user.ID, key: idem, bodyHash: fingerprint}
	}
	plaintext, k, err := s.mintKey(ctx, c, c.user.ID, req, c.at, record)
	if errors.Is(err, errCallerRevoked) {
		s.refuse(w, c)
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, client.CreateKeyResponse{APIKey: k, Plaintext: &plaintext})
}

// requestFingerprint identifies a create request by its meaning rather than
// its bytes, so re-encoding the same body on a retry still matches.
func requestFingerprint(req client.CreateKeyRequest) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (s *Server) acquireSlot(slot string) bool {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	if _, busy := s.inflight[slot]; busy {
		return false
	}
	s.inflight[slot] = struct{}{}
	return true
}

func (s *Server) releaseSlot(slot string) {
	s.inflightMu.Lock()
	defer s.inflightMu.Unlock()
	delete(s.inflight, slot)
}

// errForbiddenRevoke is a member revoking a key it did not issue.
var errForbiddenRevoke = errors.New("members can revoke only keys they issued")

// handleRevoke revokes in one transaction that re-checks the caller's key:
// of two keys revoking each other at once, the first wins and the second is
// refused. It never waits on the revoked key's requests in flight: those that
// write re-check the key themselves.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, c *caller, id string) {
	ctx := r.Context()
	var k client.APIKey
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.recheckCaller(ctx, tx, c); err != nil {
			return err
		}
		var err error
		if k, err = loadKey(ctx, tx, id); err != nil || !k.Active() {
			return err
		}
		if c.user.Role != roleAdmin && k.CreatedBy.ID != c.user.ID {
			return errForbiddenRevoke
		}
		// From here the key is refused in memory, even should the commit
		// fail: a revoke half done errs on the side of the revoke.
		s.cache.markRevoked(id)
		// revoked_at is the commit's time, not the request's: no write
		// interleaves with this transaction, every request of the key
		// recorded before it was authenticated before now, and every one
		// recorded after it is refused.
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?, revoked_by = ?
			WHERE id = ? AND revoked_at IS NULL`, nanos(s.Now()), c.user.ID, id); err != nil {
			return err
		}
		k, err = loadKey(ctx, tx, id)
		return err
	})
	switch {
	case errors.Is(err, errCallerRevoked):
		s.refuse(w, c)
	case errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, client.CodeNotFound, "no API key with that id")
	case errors.Is(err, errForbiddenRevoke):
		writeError(w, http.StatusForbidden, client.CodeForbidden, err.Error())
	case err != nil:
		s.internalError(w, err)
	default:
		writeJSON(w, http.StatusOK, k)
	}
}
