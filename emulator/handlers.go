package emulator

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

const (
	maxBodyBytes     = 64 << 10
	defaultPageSize  = 100
	maxPageSize      = 1000
	maxNameLen       = 200
	maxDescLen       = 2000
	maxScopes        = 64
	maxScopeLen      = 100
	maxIdemKeyLen    = 255
	idempotencyTTL   = 24 * time.Hour
	headerReplayed   = "Idempotent-Replayed"
	headerIdempotent = "Idempotency-Key"
)

var scopePattern = regexp.MustCompile(`^[a-z][a-z_]*:[a-z][a-z_]*$`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, client.CodeInternal, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers with the contract's error envelope. Messages are fixed
// text or the caller's own non-secret input, never key material.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, client.ErrorBody{Error: client.ErrorDetail{
		Code: code, Message: msg, RequestID: w.Header().Get("X-Request-Id"),
	}})
}

func (s *Server) internalError(w http.ResponseWriter, err error) {
	if s.cfg.Logger != nil {
		s.logMu.Lock()
		fmt.Fprintf(s.cfg.Logger, "bos-emulator: internal error (%s): %v\n", w.Header().Get("X-Request-Id"), err)
		s.logMu.Unlock()
	}
	writeError(w, http.StatusInternalServerError, client.CodeInternal, "internal error")
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, client.CodeInvalidRequest, "method not allowed; use "+allow)
}

// route answers the request into w and returns the authenticated caller, or
// nil when the request was not authenticated (and so is not logged).
func (s *Server) route(w http.ResponseWriter, r *http.Request, p string) *caller {
	if p == "/_emulator" || strings.HasPrefix(p, "/_emulator/") {
		switch {
		case s.cfg.DevEndpoints && p == "/_emulator/clock":
			s.handleClock(w, r)
		case s.cfg.DevEndpoints && p == "/_emulator/stats":
			s.handleStats(w, r)
		case s.cfg.DevEndpoints && p == "/_emulator/pprof/profile":
			s.handleProfile(w, r)
		default:
			writeError(w, http.StatusNotFound, client.CodeNotFound, "no such endpoint")
		}
		return nil
	}
	if !strings.HasPrefix(p, "/v1/") {
		writeError(w, http.StatusNotFound, client.CodeNotFound, "no such endpoint")
		return nil
	}
	c, err := s.authenticate(r)
	if errors.Is(err, errUnauthenticated) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bos"`)
		writeError(w, http.StatusUnauthorized, client.CodeUnauthenticated, "missing, malformed, unknown or revoked API key")
		return nil
	}
	if err != nil {
		s.internalError(w, err)
		return nil
	}

	switch {
	case p == "/v1/me":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
		} else {
			s.handleMe(w, r, c)
		}
	case p == "/v1/api-keys":
		if !requireManage(w, c) {
			break
		}
		switch r.Method {
		case http.MethodGet:
			s.handleListKeys(w, r)
		case http.MethodPost:
			s.handleCreateKey(w, r, c)
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case strings.HasPrefix(p, "/v1/api-keys/"):
		if !requireManage(w, c) {
			break
		}
		rest := strings.TrimPrefix(p, "/v1/api-keys/")
		id, action, _ := strings.Cut(rest, "/")
		switch {
		case action == "" && r.Method == http.MethodGet:
			s.handleGetKey(w, r, id)
		case action == "":
			methodNotAllowed(w, http.MethodGet)
		case action == "revoke" && r.Method == http.MethodPost:
			s.handleRevoke(w, r, c, id)
		case action == "revoke":
			methodNotAllowed(w, http.MethodPost)
		default:
			writeError(w, http.StatusNotFound, client.CodeNotFound, "no such endpoint")
		}
	case p == "/v1/execution-log":
		if !requireManage(w, c) {
			break
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
		} else {
			s.handleLog(w, r)
		}
	default:
		// The automation's own calls: BOS business endpoints are out of scope,
		// but each call must authenticate and show up in the log.
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "method": r.Method, "path": p})
	}
	return c
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, c *caller) {
	k, err := loadKey(r.Context(), s.db, c.key.ID)
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, client.Me{User: c.user, Workspace: s.workspace(r), Key: k})
}

func (s *Server) workspace(r *http.Request) client.Workspace {
	if ws, err := loadWorkspace(r.Context(), s.db); err == nil {
		return ws
	}
	return s.ws
}

func parsePageSize(q string) (int, bool) {
	if q == "" {
		return defaultPageSize, true
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, false
	}
	return n, true
}

// Page tokens are opaque to clients: base64 of the sort position of the last
// row served, so pages stay stable while rows are added.
func encodeCursor(a int64, b string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(a, 10) + ":" + b))
}

func decodeCursor(tok string) (int64, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", false
	}
	a, b, ok := strings.Cut(string(raw), ":")
	if !ok || b == "" {
		return 0, "", false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, b, err == nil
}

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
	size, ok := parsePageSize(q.Get("page_size"))
	if !ok {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, fmt.Sprintf("page_size must be an integer from 1 to %d", maxPageSize))
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

// queryPage runs a keyset-paged query: base, filtered by where, in order,
// reading one row more than size to know whether another page follows; the
// cursor of a page's last row is the next page's token.
func queryPage[T any](ctx context.Context, db *sql.DB, base string, where []string, args []any, order string, size int,
	scan func(*sql.Rows) (T, error), cursor func(T) string) ([]T, string, error) {
	query := base
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + order + " LIMIT ?"
	rows, err := db.QueryContext(ctx, query, append(args, size+1)...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) <= size {
		return out, "", nil
	}
	out = out[:size]
	return out, cursor(out[size-1]), nil
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

// decodeBody reads one JSON value into v, refusing unknown fields,
// trailing data and bodies over maxBodyBytes. It writes the error answer itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, client.CodeInvalidRequest, fmt.Sprintf("body over %d bytes", maxBodyBytes))
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "reading the body failed")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "malformed JSON body: "+jsonProblem(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "malformed JSON body: data after the object")
		return false
	}
	return true
}

// jsonProblem keeps decoder errors short and free of the body's contents.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "not a JSON object of the expected shape"
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
	plaintext, k, err := s.mintKey(ctx, c.user.ID, req, c.at, record)
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

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, c *caller, id string) {
	ctx := r.Context()
	k, err := loadKey(ctx, s.db, id)
	if errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, client.CodeNotFound, "no API key with that id")
		return
	}
	if err != nil {
		s.internalError(w, err)
		return
	}
	if c.user.Role != roleAdmin && k.CreatedBy.ID != c.user.ID {
		writeError(w, http.StatusForbidden, client.CodeForbidden, "members can revoke only keys they issued")
		return
	}
	if k.Active() {
		own := 0
		if c.key.ID == id {
			own = 1
		}
		// From here the key is refused in memory, even should the update
		// fail: a revoke half done errs on the side of the revoke.
		s.gate.revoke(id, own)
		if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?, revoked_by = ?
			WHERE id = ? AND revoked_at IS NULL`, nanos(c.at), c.user.ID, id); err != nil {
			s.internalError(w, err)
			return
		}
		s.cache.markRevoked(id)
		if k, err = loadKey(ctx, s.db, id); err != nil {
			s.internalError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, k)
}

func parseTimeParam(v string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var where []string
	var args []any
	if v := q.Get("key_id"); v != "" {
		where = append(where, "key_id = ?")
		args = append(args, v)
	}
	if v := q.Get("key_prefix"); v != "" {
		where = append(where, "key_prefix = ?")
		args = append(args, v)
	}
	for _, p := range []struct{ name, op string }{{"since", ">="}, {"until", "<"}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, ok := parseTimeParam(v)
		if !ok {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, p.name+" must be an RFC 3339 time")
			return
		}
		where = append(where, "at "+p.op+" ?")
		args = append(args, nanos(t))
	}
	size, ok := parsePageSize(q.Get("page_size"))
	if !ok {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, fmt.Sprintf("page_size must be an integer from 1 to %d", maxPageSize))
		return
	}
	if tok := q.Get("page_token"); tok != "" {
		at, seqStr, ok := decodeCursor(tok)
		seq, err := strconv.ParseInt(seqStr, 10, 64)
		if !ok || err != nil {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "invalid page_token")
			return
		}
		where = append(where, "(at < ? OR (at = ? AND seq < ?))")
		args = append(args, at, at, seq)
	}
	// seq orders entries stamped in the same nanosecond; the cursor needs it.
	type logRow struct {
		e   client.ExecutionLogEntry
		seq int64
	}
	page, next, err := queryPage(r.Context(), s.db,
		`SELECT seq, id, at, key_id, key_prefix, method, path, status, source_ip, user_agent FROM execution_log`,
		where, args, "at DESC, seq DESC", size,
		func(rows *sql.Rows) (logRow, error) {
			var l logRow
			var at int64
			err := rows.Scan(&l.seq, &l.e.ID, &at, &l.e.KeyID, &l.e.KeyPrefix, &l.e.Method, &l.e.Path, &l.e.Status, &l.e.SourceIP, &l.e.UserAgent)
			l.e.At = fromNanos(at)
			return l, err
		},
		func(l logRow) string { return encodeCursor(nanos(l.e.At), strconv.FormatInt(l.seq, 10)) })
	if err != nil {
		s.internalError(w, err)
		return
	}
	resp := client.ExecutionLogResponse{Entries: make([]client.ExecutionLogEntry, len(page)), NextPageToken: next}
	for i, l := range page {
		resp.Entries[i] = l.e
	}
	writeJSON(w, http.StatusOK, resp)
}

// Stats are the emulator's work counters since it started.
type Stats struct {
	// BcryptCalls is how many bcrypt comparisons authentication ran: with
	// the verified-key cache, one per distinct key, not one per request.
	BcryptCalls int64 `json:"bcrypt_calls"`
	// LogEntries and LogCommits are execution-log entries written and the
	// transactions (fsyncs) that wrote them.
	LogEntries int64 `json:"log_entries"`
	LogCommits int64 `json:"log_commits"`
}

// Stats reads the counters.
func (s *Server) Stats() Stats {
	return Stats{
		BcryptCalls: s.bcryptCalls.Load(),
		LogEntries:  s.writer.entries.Load(),
		LogCommits:  s.writer.commits.Load(),
	}
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	writeJSON(w, http.StatusOK, s.Stats())
}

type clockAnswer struct {
	Now time.Time `json:"now"`
}

func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var req struct {
			Advance string `json:"advance"`
		}
		if !decodeBody(w, r, &req) {
			return
		}
		d, err := duration.Parse(req.Advance)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, `advance must be a non-negative duration such as "90s", "24h" or "2d"`)
			return
		}
		s.Advance(d)
		if err := s.saveClock(r.Context()); err != nil {
			s.internalError(w, err)
			return
		}
	default:
		methodNotAllowed(w, "GET, POST")
		return
	}
	writeJSON(w, http.StatusOK, clockAnswer{Now: s.Now()})
}
