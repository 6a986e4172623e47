package client

import "time"

// Key statuses.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
	StatusAll     = "all"
)

// ScopeManage is the scope a management key needs.
const ScopeManage = "keys:manage"

// User is a BOS user: the caller of GET /v1/me, or a key's issuer or revoker.
// Role is the user's role now ("admin" or "member"), not when the key was
// created; lineage is believed only together with it.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role,omitempty"`
}

// Workspace is the workspace a key belongs to.
type Workspace struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// APIKey is a key as the server describes it. It never carries a plaintext.
// Description is free text set at creation, "" when none; plana writes a
// successor's lineage there.
type APIKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Prefix      string     `json:"prefix"`
	Scopes      []string   `json:"scopes"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   User       `json:"created_by"`
	LastUsedAt  *time.Time `json:"last_used_at"`
	RevokedAt   *time.Time `json:"revoked_at"`
	RevokedBy   *User      `json:"revoked_by"`
}

// Active reports whether the key can still authenticate.
func (k APIKey) Active() bool { return k.Status == StatusActive }

// Me is the answer of GET /v1/me: who the caller is.
type Me struct {
	User      User      `json:"user"`
	Workspace Workspace `json:"workspace"`
	Key       APIKey    `json:"key"`
}

// ExecutionLogEntry is one authenticated call recorded by the server.
type ExecutionLogEntry struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	KeyID     string    `json:"key_id"`
	KeyPrefix string    `json:"key_prefix"`
	Method    string    `json:"method"`
	Path      string    `json:"path"`
	Status    int       `json:"status"`
	SourceIP  string    `json:"source_ip"`
	UserAgent string    `json:"user_agent"`
}

// CreateKeyRequest is the body of POST /v1/api-keys. Description is at most
// 500 characters; the server refuses more with 422.
type CreateKeyRequest struct {
	Name        string   `json:"name"`
	Scopes      []string `json:"scopes"`
	Description string   `json:"description,omitempty"`
}

// CreateKeyResponse is the answer of POST /v1/api-keys. Plaintext is nil on an
// idempotent replay: the server never keeps a plaintext.
type CreateKeyResponse struct {
	APIKey    APIKey  `json:"api_key"`
	Plaintext *string `json:"plaintext"`
}

// ListKeysResponse is one page of GET /v1/api-keys.
type ListKeysResponse struct {
	APIKeys       []APIKey `json:"api_keys"`
	NextPageToken string   `json:"next_page_token"`
}

// ExecutionLogResponse is one page of GET /v1/execution-log, newest first.
type ExecutionLogResponse struct {
	Entries       []ExecutionLogEntry `json:"entries"`
	NextPageToken string              `json:"next_page_token"`
}

// ErrorBody is the JSON envelope of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// Error codes of the contract.
const (
	CodeInvalidRequest   = "invalid_request"
	CodeUnauthenticated  = "unauthenticated"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeConflict         = "conflict"
	CodeValidationFailed = "validation_failed"
	CodeRateLimited      = "rate_limited"
	CodeInternal         = "internal"
)
