package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrNotBOS is wrapped when a 2xx answer lacks what the BOS API always
// sends: the server at the base URL is something else (a proxy's landing
// page, a catch-all behind a base URL with a path).
var ErrNotBOS = errors.New("not a BOS API answer")

// Me answers who the presented key belongs to. An answer without a user,
// a workspace and a key is an error: `auth status` and `doctor` would
// otherwise report a healthy login to whatever answered 200.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var me Me
	if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/me"}, &me); err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"user.id", me.User.ID}, {"workspace.id", me.Workspace.ID}, {"key.id", me.Key.ID}, {"key.prefix", me.Key.Prefix},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("GET /v1/me: %w: the answer has no %s, so %s is not the BOS API's base URL (want scheme://host[:port] of the API)",
			ErrNotBOS, strings.Join(missing, ", "), c.BaseURL())
	}
	return &me, nil
}

// ListKeysOptions filters GET /v1/api-keys.
type ListKeysOptions struct {
	Status   string // active (default), revoked or all
	PageSize int    // 0: the server's default
}

// ListKeysPages calls fn with each page in turn until the last page or fn
// returns an error; memory stays at one page whatever the workspace's size.
func (c *Client) ListKeysPages(ctx context.Context, opts ListKeysOptions, fn func([]APIKey) error) error {
	q := url.Values{}
	if opts.Status != "" {
		q.Set("status", opts.Status)
	}
	if opts.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(opts.PageSize))
	}
	var pages pageTokens
	for {
		var page ListKeysResponse
		if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/api-keys", Query: q}, &page); err != nil {
			return err
		}
		if err := fn(page.APIKeys); err != nil {
			return err
		}
		if page.NextPageToken == "" {
			return nil
		}
		if err := pages.next(page.NextPageToken); err != nil {
			return fmt.Errorf("GET /v1/api-keys: %w", err)
		}
		q.Set("page_token", page.NextPageToken)
	}
}

// ListKeys returns every key matching opts, following pagination.
func (c *Client) ListKeys(ctx context.Context, opts ListKeysOptions) ([]APIKey, error) {
	var all []APIKey
	err := c.ListKeysPages(ctx, opts, func(p []APIKey) error {
		all = append(all, p...)
		return nil
	})
	return all, err
}

// GetKey returns one key by id.
func (c *Client) GetKey(ctx context.Context, id string) (*APIKey, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var k APIKey
	if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/api-keys/" + url.PathEscape(id)}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// CreatedKey is the outcome of CreateKey.
type CreatedKey struct {
	APIKey APIKey
	// Plaintext is empty when Replayed: the server answered an earlier request
	// with the same idempotency key, and it never keeps a plaintext. The
	// caller must revoke that key and create another.
	Plaintext string
	Replayed  bool
}

// ErrPlaintextLost is returned with a replayed create: the key exists but its
// plaintext was only in the lost first answer.
var ErrPlaintextLost = errors.New("the key was created by an earlier attempt whose answer was lost; its plaintext cannot be recovered")

// CreateKey issues a key. idempotencyKey must be non-empty (use
// NewIdempotencyKey and keep it until the answer is safely stored): it makes
// the call safe to retry and lets a lost answer be found again.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest, idempotencyKey string) (*CreatedKey, error) {
	if idempotencyKey == "" {
		return nil, errors.New("CreateKey needs an idempotency key")
	}
	var out CreateKeyResponse
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/api-keys", Body: req, IdempotencyKey: idempotencyKey}, &out)
	if err != nil {
		return nil, err
	}
	ck := &CreatedKey{APIKey: out.APIKey, Replayed: resp.Replayed || out.Plaintext == nil}
	if out.Plaintext != nil {
		ck.Plaintext = *out.Plaintext
	}
	return ck, nil
}

// RevokeKey revokes a key; revoking a revoked key is a no-op.
func (c *Client) RevokeKey(ctx context.Context, id string) (*APIKey, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	var k APIKey
	// Revoking is idempotent on the server, so retrying it is safe: the
	// key id doubles as the idempotency key.
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/api-keys/" + url.PathEscape(id) + "/revoke", IdempotencyKey: "revoke-" + id}, &k)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// ExecutionLogOptions filters GET /v1/execution-log.
type ExecutionLogOptions struct {
	KeyID     string
	KeyPrefix string
	Since     time.Time // inclusive; zero: no bound
	Until     time.Time // exclusive; zero: no bound
	PageSize  int
	Limit     int // stop after this many entries; 0: all
}

// ExecutionLogPages calls fn with each page, newest entries first, until the
// last page, Limit entries, or fn returns an error.
func (c *Client) ExecutionLogPages(ctx context.Context, opts ExecutionLogOptions, fn func([]ExecutionLogEntry) error) error {
	q := url.Values{}
	if opts.KeyID != "" {
		q.Set("key_id", opts.KeyID)
	}
	if opts.KeyPrefix != "" {
		q.Set("key_prefix", opts.KeyPrefix)
	}
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.UTC().Format(time.RFC3339Nano))
	}
	if !opts.Until.IsZero() {
		q.Set("until", opts.Until.UTC().Format(time.RFC3339Nano))
	}
	if opts.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(opts.PageSize))
	}
	seen := 0
	var pages pageTokens
	for {
		var page ExecutionLogResponse
		if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/execution-log", Query: q}, &page); err != nil {
			return err
		}
		entries := page.Entries
		if opts.Limit > 0 && seen+len(entries) > opts.Limit {
			entries = entries[:opts.Limit-seen]
		}
		seen += len(entries)
		if err := fn(entries); err != nil {
			return err
		}
		if page.NextPageToken == "" || (opts.Limit > 0 && seen >= opts.Limit) {
			return nil
		}
		if err := pages.next(page.NextPageToken); err != nil {
			return fmt.Errorf("GET /v1/execution-log: %w", err)
		}
		q.Set("page_token", page.NextPageToken)
	}
}

// pageTokens are the page tokens a listing has followed: a server that hands
// one out twice would otherwise be paged through forever.
type pageTokens map[string]bool

func (p *pageTokens) next(token string) error {
	if *p == nil {
		*p = pageTokens{}
	}
	if (*p)[token] {
		return fmt.Errorf("the server sent page token %q a second time: stopping a listing that would never end", redact(token))
	}
	(*p)[token] = true
	return nil
}

// ExecutionLog returns the entries matching opts, newest first.
func (c *Client) ExecutionLog(ctx context.Context, opts ExecutionLogOptions) ([]ExecutionLogEntry, error) {
	var all []ExecutionLogEntry
	err := c.ExecutionLogPages(ctx, opts, func(p []ExecutionLogEntry) error {
		all = append(all, p...)
		return nil
	})
	return all, err
}

func validID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	return nil
}
