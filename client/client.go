// Package client is a typed client for the BOS API keys contract (v1).
//
// It retries 429 and 5xx answers with capped exponential backoff and jitter,
// honouring Retry-After, never retries a POST that has no Idempotency-Key,
// exposes the server's clock (the Date header) and, configured with several
// keys, falls back to the next key on 401 only.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

const (
	defaultUserAgent      = "plana-client"
	defaultRequestTimeout = 15 * time.Second
	defaultMaxTries       = 6
	defaultMaxElapsed     = 60 * time.Second
	maxRetryAfter         = 30 * time.Second
	maxResponseBytes      = 32 << 20
	maxIdempotencyKeyLen  = 255
)

// Client talks to one BOS API. It is safe for concurrent use.
type Client struct {
	base           *url.URL
	keys           []string
	httpClient     *http.Client
	userAgent      string
	requestTimeout time.Duration
	maxTries       uint
	maxElapsed     time.Duration
	initialBackoff time.Duration
	maxBackoff     time.Duration

	mu         sync.Mutex
	serverDate time.Time
	receivedAt time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithKeys sets the keys to present, in order of preference. With more than
// one, a 401 moves the same request on to the next key (the seed's
// "new key first, old key as fallback" pattern); any other answer does not.
func WithKeys(keys ...string) Option {
	return func(c *Client) { c.keys = append([]string(nil), keys...) }
}

// WithHTTPClient replaces the underlying HTTP client (transport, proxies).
// Its redirect policy is not used: the client never follows a redirect.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithUserAgent sets the User-Agent the execution log will show.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithRequestTimeout bounds each attempt (not the whole retried call).
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.requestTimeout = d } }

// WithRetry sets the number of attempts (1 disables retries) and the longest
// time spent retrying one call.
func WithRetry(maxTries int, maxElapsed time.Duration) Option {
	return func(c *Client) {
		if maxTries < 1 {
			maxTries = 1
		}
		c.maxTries, c.maxElapsed = uint(maxTries), maxElapsed
	}
}

// WithBackoff sets the first and the largest wait between attempts.
func WithBackoff(initial, max time.Duration) Option {
	return func(c *Client) { c.initialBackoff, c.maxBackoff = initial, max }
}

// New returns a client for the API at baseURL (e.g. "http://127.0.0.1:8787").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid API URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{
		base:           u,
		httpClient:     &http.Client{},
		userAgent:      defaultUserAgent,
		requestTimeout: defaultRequestTimeout,
		maxTries:       defaultMaxTries,
		maxElapsed:     defaultMaxElapsed,
		initialBackoff: 200 * time.Millisecond,
		maxBackoff:     5 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	// A redirect would take the Authorization header along to wherever the
	// server points (Go keeps it for the same host on another port or
	// scheme), so the key could reach an origin it was never bound to.
	hc := *c.httpClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.httpClient = &hc
	return c, nil
}

// BaseURL is the API's address.
func (c *Client) BaseURL() string { return c.base.String() }

// ServerNow estimates the server's current time from the Date header of the
// latest answer plus the time elapsed since (monotonic). ok is false before
// any answer carried a Date.
func (c *Client) ServerNow() (now time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.serverDate.IsZero() {
		return time.Time{}, false
	}
	return c.serverDate.Add(time.Since(c.receivedAt)), true
}

func (c *Client) noteDate(resp *http.Response) {
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Date has whole seconds: the server's clock is somewhere in [d, d+1s).
	// A running estimate already inside that range is the finer one, and
	// keeping it stops the estimate from stepping back by up to a second at
	// every answer (which made the gate re-read log entries it had seen).
	if !c.serverDate.IsZero() {
		est := c.serverDate.Add(now.Sub(c.receivedAt))
		if !est.Before(d) && est.Before(d.Add(time.Second)) {
			return
		}
	}
	c.serverDate, c.receivedAt = d.UTC(), now
}

// Response describes a successful answer.
type Response struct {
	StatusCode int
	RequestID  string
	Date       time.Time
	Replayed   bool // Idempotent-Replayed: true
}

// Request is one call to the API.
type Request struct {
	Method         string
	Path           string // escaped, e.g. "/v1/api-keys/" + url.PathEscape(id)
	Query          url.Values
	Body           any    // marshalled as JSON when non-nil
	IdempotencyKey string // required for a POST to be retried
}

// Do sends req, retrying where the contract allows, and decodes a 2xx JSON
// answer into out (when out is non-nil).
func (c *Client) Do(ctx context.Context, req Request, out any) (*Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = json.Marshal(req.Body); err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
	}
	if len(req.IdempotencyKey) > maxIdempotencyKeyLen {
		return nil, fmt.Errorf("idempotency key longer than %d characters", maxIdempotencyKeyLen)
	}
	retryable := req.Method == http.MethodGet || req.Method == http.MethodHead || req.IdempotencyKey != ""

	exp := backoff.NewExponentialBackOff()
	exp.InitialInterval = c.initialBackoff
	exp.MaxInterval = c.maxBackoff
	op := func() (*Response, error) {
		resp, err := c.attempt(ctx, req, body, out)
		if err == nil {
			return resp, nil
		}
		if !retryable || ctx.Err() != nil {
			return nil, backoff.Permanent(err)
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			// 409 on a POST with an idempotency key means our earlier attempt
			// is still in flight on the server: wait for it and replay.
			if apiErr.Temporary() || (apiErr.StatusCode == http.StatusConflict && req.IdempotencyKey != "") {
				return nil, err
			}
			return nil, backoff.Permanent(err)
		}
		return nil, err // transport error: connection reset, timeout
	}
	return backoff.Retry(ctx, op,
		backoff.WithBackOff(exp),
		backoff.WithMaxTries(c.maxTries),
		backoff.WithMaxElapsedTime(c.maxElapsed))
}

// attempt makes one try, moving through the fallback keys on 401.
func (c *Client) attempt(ctx context.Context, req Request, body []byte, out any) (*Response, error) {
	keys := c.keys
	if len(keys) == 0 {
		keys = []string{""}
	}
	var err error
	for i, key := range keys {
		var resp *Response
		resp, err = c.send(ctx, req, body, key, out)
		if err == nil {
			return resp, nil
		}
		if i < len(keys)-1 && errors.Is(err, ErrUnauthenticated) {
			continue
		}
		break
	}
	return nil, err
}

func (c *Client) send(ctx context.Context, req Request, body []byte, key string, out any) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()

	// req.Path is already escaped (a key id may hold any character and is
	// escaped by the caller); setting only Path would escape it twice.
	p, err := url.PathUnescape(req.Path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: invalid path: %w", req.Method, req.Path, err)
	}
	u := *c.base
	u.Path = c.base.Path + p
	u.RawPath = c.base.EscapedPath() + req.Path
	u.RawQuery = req.Query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		hreq.Header.Set("Authorization", "Bearer "+key)
	}
	if req.IdempotencyKey != "" {
		hreq.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	hresp, err := c.httpClient.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.Path, unwrapURLError(err))
	}
	defer hresp.Body.Close()
	c.noteDate(hresp)
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", req.Method, req.Path, err)
	}
	meta := &Response{StatusCode: hresp.StatusCode, RequestID: hresp.Header.Get("X-Request-Id"),
		Replayed: hresp.Header.Get("Idempotent-Replayed") == "true"}
	meta.Date, _ = http.ParseTime(hresp.Header.Get("Date"))
	if hresp.StatusCode >= 300 && hresp.StatusCode <= 399 {
		return nil, &APIError{StatusCode: hresp.StatusCode, RequestID: meta.RequestID,
			Message: fmt.Sprintf("redirect to %q: plana does not follow redirects, which would carry the key to another address; set the API URL to the address that answers",
				redact(hresp.Header.Get("Location")))}
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		return nil, decodeError(hresp, data, meta.RequestID)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			// A decoding error quotes the value it choked on, which may be
			// anything the server sent.
			return nil, fmt.Errorf("%s %s: decoding answer (HTTP %d): %s", req.Method, req.Path, hresp.StatusCode, redact(err.Error()))
		}
	}
	return meta, nil
}

// unwrapURLError drops url.Error's quoting of the whole URL, which is noise
// for users and would carry query strings into messages.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decodeError(resp *http.Response, data []byte, requestID string) error {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: requestID,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), resp.Header.Get("Date"))}
	var eb ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, redact(eb.Error.Message)
		if e.RequestID == "" {
			e.RequestID = eb.Error.RequestID
		}
	}
	return e
}

// parseRetryAfter accepts delta-seconds or an HTTP date (relative to the
// server's own Date when present, so a skewed local clock does not matter).
// Garbage yields zero: the caller's own backoff applies.
func parseRetryAfter(v, date string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		now := time.Now()
		if srv, err := http.ParseTime(date); err == nil {
			now = srv
		}
		d = at.Sub(now)
	} else {
		return 0
	}
	if d <= 0 {
		// A date already passed still means "wait a moment", not "hammer".
		return 100 * time.Millisecond
	}
	return time.Duration(math.Min(float64(d), float64(maxRetryAfter)))
}

// NewIdempotencyKey returns a random key for POST /v1/api-keys.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "idem_" + hex.EncodeToString(b[:])
}
