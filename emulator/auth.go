package emulator

import (
	"context"
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
	// refused is set when the key proved its secret but is revoked: the
	// request is answered 401 and logged, without touching last_used_at.
	refused bool
	// rechecked is set once the key was found unrevoked inside a write
	// transaction: any revoke of it comes later, so the request is
	// recorded as answered without another check.
	rechecked bool
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

// errRevoked is a key that proved its secret but is revoked. Unlike
// errUnauthenticated it comes with the caller, so that the refusal is logged
// against the key: the log then shows where a revoked key is still in use.
var errRevoked = errors.New("revoked key")

// verifiedCache maps sha256(presented key) to the caller it proved, so a
// key pays bcrypt and the database read once per process rather than once
// per request. Only proven keys go in: a wrong secret is never cached. A
// revoke marks its key revoked by id, for the life of the process (a revoke
// is final), rather than dropping its entry: a revoked key that keeps calling
// costs a map lookup, not a bcrypt each time, and a lookup that read the key
// just before the revoke cannot cache it as active just after.
type verifiedCache struct {
	mu      sync.RWMutex
	bySum   map[[sha256.Size]byte]*cachedKey
	revoked map[string]bool
}

type cachedKey struct {
	caller  *caller
	revoked bool
}

func (c *verifiedCache) get(sum [sha256.Size]byte) (cachedKey, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.bySum[sum]
	if !ok {
		return cachedKey{}, false
	}
	return cachedKey{caller: v.caller, revoked: v.revoked || c.revoked[v.caller.key.ID]}, true
}

func (c *verifiedCache) put(sum [sha256.Size]byte, v cachedKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySum == nil {
		c.bySum = map[[sha256.Size]byte]*cachedKey{}
	}
	c.bySum[sum] = &v
}

// forgetProven drops every proven key, keeping the revoked marks.
func (c *verifiedCache) forgetProven() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bySum = nil
}

func (c *verifiedCache) markRevoked(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.revoked == nil {
		c.revoked = map[string]bool{}
	}
	c.revoked[keyID] = true
}

func (c *verifiedCache) isRevoked(keyID string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.revoked[keyID]
}

// errCallerRevoked is a caller whose key was revoked while its request was
// in flight, found by recheckCaller.
var errCallerRevoked = errors.New("the caller's key was revoked during the request")

// recheckCaller is run by every handler that writes, inside the transaction
// that writes, so that a revoke wins over requests in flight without waiting
// for them: a request whose key is revoked before it writes writes nothing.
// Transactions run one at a time, so the revoke either committed before (the
// row says so) or starts after this one commits; the in-memory mark also
// covers a revoke whose own commit failed.
func (s *Server) recheckCaller(ctx context.Context, tx *sql.Tx, c *caller) error {
	if s.cache.isRevoked(c.key.ID) {
		return errCallerRevoked
	}
	var revoked bool
	err := tx.QueryRowContext(ctx, revokedSQL, c.key.ID).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked) {
		return errCallerRevoked
	}
	if err == nil {
		c.rechecked = true
	}
	return err
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

// authenticate resolves the presented key to its active key and user. A
// revoked key whose secret is right returns its caller with errRevoked. The
// key's shape and checksum are checked before the database or bcrypt is
// touched, so garbage costs nothing; a key seen before costs a hash.
func (s *Server) authenticate(r *http.Request) (*caller, error) {
	tok, ok := bearerToken(r)
	if !ok {
		return nil, errUnauthenticated
	}
	parsed, err := client.ParseKey(tok)
	if err != nil {
		return nil, errUnauthenticated
	}
	sum := sha256.Sum256([]byte(tok))
	cached, ok := s.cache.get(sum)
	if !ok {
		if cached, err = s.lookup(r, tok, parsed, sum); err != nil {
			return nil, err
		}
	}
	c := *cached.caller
	c.at = s.Now()
	if cached.revoked || s.cache.isRevoked(c.key.ID) {
		c.refused = true
		return &c, errRevoked
	}
	return &c, nil
}

// lookup reads the key and its user and proves tok against the stored hash.
// A revoked key is proven too, before it is refused, so that the answer's
// timing does not tell whether a key id is revoked without its secret.
func (s *Server) lookup(r *http.Request, tok string, parsed client.Key, sum [sha256.Size]byte) (cachedKey, error) {
	var (
		c                  caller
		hash               string
		keyScopes, uScopes string
		revokedAt          sql.NullInt64
		storedPrefix       string
	)
	err := s.db.QueryRowContext(r.Context(), `
		SELECT k.id, k.prefix, k.hash, k.scopes, k.revoked_at, u.id, u.email, u.role, u.scopes
		FROM api_keys k JOIN users u ON u.id = k.created_by
		WHERE k.public_id = ?`, parsed.PublicID).
		Scan(&c.key.ID, &storedPrefix, &hash, &keyScopes, &revokedAt, &c.user.ID, &c.user.Email, &c.user.Role, &uScopes)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && storedPrefix != parsed.Prefix) {
		return cachedKey{}, errUnauthenticated
	}
	if err != nil {
		return cachedKey{}, err
	}
	c.key.Prefix = storedPrefix
	if c.keyScopes, err = decodeScopes(keyScopes); err != nil {
		return cachedKey{}, err
	}
	if c.userScopes, err = decodeScopes(uScopes); err != nil {
		return cachedKey{}, err
	}
	entry := cachedKey{caller: &c, revoked: revokedAt.Valid}
	if err := s.verify(tok, sum, hash, parsed.PublicID, entry); err != nil {
		return cachedKey{}, err
	}
	return entry, nil
}

// verify proves tok against the stored hash and caches the result; it
// returns errUnauthenticated for a wrong secret and *errRateLimited when
// publicID has failed too often (see failLimiter). Concurrent first uses of
// one key share a single bcrypt through singleflight; the cache is
// re-checked inside the flight because a flight that just ended may have
// filled it. At most GOMAXPROCS hashes run at once, so a burst of new keys
// finishes one key after another instead of all of them at the end.
func (s *Server) verify(tok string, sum [sha256.Size]byte, hash, publicID string, entry cachedKey) error {
	_, err, _ := s.flight.Do(hex.EncodeToString(sum[:]), func() (any, error) {
		if cached, ok := s.cache.get(sum); ok && cached.caller.key.ID == entry.caller.key.ID {
			return nil, nil
		}
		if ok, wait := s.failures.take(publicID, s.Now()); !ok {
			return nil, &errRateLimited{retryAfter: wait}
		}
		s.bcryptSlots <- struct{}{}
		defer func() { <-s.bcryptSlots }()
		s.bcryptCalls.Add(1)
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte(tok)) != nil {
			return nil, errUnauthenticated
		}
		s.failures.give(publicID)
		s.cache.put(sum, entry)
		return nil, nil
	})
	return err
}

// requireManage is the gate of every key-management endpoint.
func requireManage(w http.ResponseWriter, c *caller) bool {
	if !c.hasKeyScope(client.ScopeManage) {
		writeError(w, http.StatusForbidden, client.CodeForbidden, "this key lacks the keys:manage scope")
		return false
	}
	return true
}
