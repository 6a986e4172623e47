package emulator

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
	"golang.org/x/crypto/bcrypt"
)

// caller is who an authenticated request acts as: the user who issued the
// presented key.
type caller struct {
	user       client.User // Role set
	userScopes []string
	key        struct{ ID, Prefix string }
	keyScopes  []string
	at         time.Time // when the request was authenticated, on the emulator clock
}

func (c *caller) hasKeyScope(scope string) bool {
	for _, s := range c.keyScopes {
		if s == scope {
			return true
		}
	}
	return false
}

func (c *caller) holdsScope(scope string) bool {
	if c.user.Role == roleAdmin {
		return true
	}
	for _, s := range c.userScopes {
		if s == scope {
			return true
		}
	}
	return false
}

const (
	roleAdmin  = "admin"
	roleMember = "member"
)

// maxAuthHeader bounds the header before any parsing: a key is 54 bytes, so
// anything much longer is refused without looking at it.
const maxAuthHeader = 128

var errUnauthenticated = errors.New("unauthenticated")

// verifiedCache maps sha256(presented key) to the key id it proved, so an
// active key pays bcrypt once per process rather than once per request. Only
// successes go in; a revoke removes its key's entry before answering.
type verifiedCache struct {
	mu    sync.Mutex
	bySum map[[sha256.Size]byte]string
	byKey map[string][sha256.Size]byte
}

func (c *verifiedCache) get(sum [sha256.Size]byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.bySum[sum]
	return id, ok
}

func (c *verifiedCache) put(sum [sha256.Size]byte, keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySum == nil {
		c.bySum = map[[sha256.Size]byte]string{}
		c.byKey = map[string][sha256.Size]byte{}
	}
	c.bySum[sum] = keyID
	c.byKey[keyID] = sum
}

func (c *verifiedCache) drop(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sum, ok := c.byKey[keyID]; ok {
		delete(c.bySum, sum)
		delete(c.byKey, keyID)
	}
}

// bearerToken checks the header's shape: one Authorization header, the
// Bearer scheme, one printable-ASCII token and nothing else.
func bearerToken(r *http.Request) (string, bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 || len(vals[0]) > maxAuthHeader {
		return "", false
	}
	v := vals[0]
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", false
		}
	}
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.Contains(tok, " ") {
		return "", false
	}
	return tok, true
}

// authenticate resolves the presented key to its active key and user. The
// key's shape and checksum are checked before the database or bcrypt is
// touched, so garbage costs nothing.
func (s *Server) authenticate(r *http.Request) (*caller, error) {
	tok, ok := bearerToken(r)
	if !ok {
		return nil, errUnauthenticated
	}
	parsed, err := client.ParseKey(tok)
	if err != nil {
		return nil, errUnauthenticated
	}
	ctx := r.Context()
	var (
		c                  caller
		hash               string
		keyScopes, uScopes string
		revokedAt          sql.NullInt64
		storedPrefix       string
	)
	err = s.db.QueryRowContext(ctx, `
		SELECT k.id, k.prefix, k.hash, k.scopes, k.revoked_at, u.id, u.email, u.role, u.scopes
		FROM api_keys k JOIN users u ON u.id = k.created_by
		WHERE k.public_id = ?`, parsed.PublicID).
		Scan(&c.key.ID, &storedPrefix, &hash, &keyScopes, &revokedAt, &c.user.ID, &c.user.Email, &c.user.Role, &uScopes)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && storedPrefix != parsed.Prefix) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	c.key.Prefix = storedPrefix
	if !s.verify(tok, c.key.ID, hash) {
		return nil, errUnauthenticated
	}
	if revokedAt.Valid {
		return nil, errUnauthenticated
	}
	if c.keyScopes, err = decodeScopes(keyScopes); err != nil {
		return nil, err
	}
	if c.userScopes, err = decodeScopes(uScopes); err != nil {
		return nil, err
	}
	c.at = s.Now()
	return &c, nil
}

// verify proves tok against the stored hash. Concurrent first uses of one
// key share a single bcrypt through singleflight; the cache is re-checked
// inside the flight because a flight that just ended may have filled it.
func (s *Server) verify(tok, keyID, hash string) bool {
	sum := sha256.Sum256([]byte(tok))
	if id, ok := s.cache.get(sum); ok && id == keyID {
		return true
	}
	v, _, _ := s.flight.Do(hex.EncodeToString(sum[:]), func() (any, error) {
		if id, ok := s.cache.get(sum); ok && id == keyID {
			return true, nil
		}
		s.bcryptCalls.Add(1)
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(tok)) != nil {
			return false, nil
		}
		s.cache.put(sum, keyID)
		return true, nil
	})
	return v.(bool)
}

// requireManage is the gate of every key-management endpoint.
func requireManage(w http.ResponseWriter, c *caller) bool {
	if !c.hasKeyScope(client.ScopeManage) {
		writeError(w, http.StatusForbidden, client.CodeForbidden, "this key lacks the keys:manage scope")
		return false
	}
	return true
}
