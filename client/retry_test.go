package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterIsHonoured(t *testing.T) {
	tests := []struct {
		name string
		// retryAfter builds the header from the Date the server sends.
		retryAfter func(serverDate time.Time) string
		// serverDate is the server's clock; deliberately an hour behind in one
		// case, to prove an HTTP-date Retry-After is read against it.
		serverDate     func() time.Time
		minGap, maxGap time.Duration
	}{
		{
			name:       "seconds",
			retryAfter: func(time.Time) string { return "1" },
			serverDate: time.Now,
			minGap:     time.Second, maxGap: 3 * time.Second,
		},
		{
			name:       "HTTP date",
			retryAfter: func(d time.Time) string { return d.Add(time.Second).Format(http.TimeFormat) },
			serverDate: time.Now,
			minGap:     900 * time.Millisecond, maxGap: 3 * time.Second,
		},
		{
			name:       "HTTP date from a server whose clock is an hour behind",
			retryAfter: func(d time.Time) string { return d.Add(time.Second).Format(http.TimeFormat) },
			serverDate: func() time.Time { return time.Now().Add(-time.Hour) },
			minGap:     900 * time.Millisecond, maxGap: 3 * time.Second,
		},
		{
			name:       "garbage falls back to backoff",
			retryAfter: func(time.Time) string { return "soon" },
			serverDate: time.Now,
			minGap:     0, maxGap: 500 * time.Millisecond,
		},
		{
			name:       "negative falls back to backoff",
			retryAfter: func(time.Time) string { return "-5" },
			serverDate: time.Now,
			minGap:     0, maxGap: 500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api, srv := newFakeAPI(t, func(n int, _ arrival, w http.ResponseWriter) {
				if n == 0 {
					d := tt.serverDate().UTC().Truncate(time.Second)
					w.Header().Set("Date", d.Format(http.TimeFormat))
					w.Header().Set("Retry-After", tt.retryAfter(d))
					writeErr(w, http.StatusTooManyRequests, CodeRateLimited, "slow down")
					return
				}
				writeJSON(w, http.StatusOK, sampleMe("key_1"))
			})
			// A slow backoff would hide a Retry-After that was ignored.
			c := fastClient(t, srv.URL, WithBackoff(time.Millisecond, time.Millisecond))
			if _, err := c.Me(context.Background()); err != nil {
				t.Fatalf("Me() error = %v, want success after one retry", err)
			}
			got := api.got()
			if len(got) != 2 {
				t.Fatalf("%d arrivals, want 2", len(got))
			}
			if gap := got[1].at.Sub(got[0].at); gap < tt.minGap || gap > tt.maxGap {
				t.Errorf("retried after %v, want between %v and %v", gap, tt.minGap, tt.maxGap)
			}
		})
	}
}

// A Retry-After longer than the retry budget is not waited out: the caller
// gets the 429 at once, with the (capped) wait the server asked for.
func TestRetryAfterBeyondBudgetGivesUp(t *testing.T) {
	api, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "3600")
		writeErr(w, http.StatusTooManyRequests, CodeRateLimited, "slow down")
	})
	c := fastClient(t, srv.URL, WithRetry(5, 2*time.Second))
	start := time.Now()
	_, err := c.Me(context.Background())
	if !errors.Is(err, ErrRateLimited) {
		t.Fatalf("Me() error = %v, want ErrRateLimited", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("gave up after %v, want at once", took)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != maxRetryAfter {
		t.Errorf("RetryAfter = %v, want the cap %v", apiErr.RetryAfter, maxRetryAfter)
	}
	if n := len(api.got()); n != 1 {
		t.Errorf("%d arrivals, want 1", n)
	}
}

func TestWhichAnswersAreRetried(t *testing.T) {
	tests := []struct {
		status   int
		code     string
		method   string
		idem     string
		arrivals int // 2: retried once and then succeeded; 1: not retried
	}{
		{http.StatusInternalServerError, CodeInternal, http.MethodGet, "", 2},
		{http.StatusBadGateway, "", http.MethodGet, "", 2},
		{http.StatusServiceUnavailable, CodeInternal, http.MethodGet, "", 2},
		{http.StatusTooManyRequests, CodeRateLimited, http.MethodGet, "", 2},
		{http.StatusBadRequest, CodeInvalidRequest, http.MethodGet, "", 1},
		{http.StatusUnauthorized, CodeUnauthenticated, http.MethodGet, "", 1},
		{http.StatusForbidden, CodeForbidden, http.MethodGet, "", 1},
		{http.StatusNotFound, CodeNotFound, http.MethodGet, "", 1},
		{http.StatusConflict, CodeConflict, http.MethodGet, "", 1},
		{http.StatusUnprocessableEntity, CodeValidationFailed, http.MethodPost, "idem_1", 1},
		{http.StatusInternalServerError, CodeInternal, http.MethodPost, "", 1},
		{http.StatusTooManyRequests, CodeRateLimited, http.MethodPost, "", 1},
		{http.StatusInternalServerError, CodeInternal, http.MethodPost, "idem_1", 2},
		{http.StatusTooManyRequests, CodeRateLimited, http.MethodPost, "idem_1", 2},
		// Our own earlier attempt is still in flight: wait and replay it.
		{http.StatusConflict, CodeConflict, http.MethodPost, "idem_1", 2},
	}
	for _, tt := range tests {
		name := tt.method + " " + http.StatusText(tt.status)
		if tt.idem != "" {
			name += " with Idempotency-Key"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			api, srv := newFakeAPI(t, func(n int, _ arrival, w http.ResponseWriter) {
				if n == 0 {
					writeErr(w, tt.status, tt.code, "first attempt fails")
					return
				}
				writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
			})
			c := fastClient(t, srv.URL)
			_, err := c.Do(context.Background(), Request{Method: tt.method, Path: "/v1/things", IdempotencyKey: tt.idem}, nil)
			got := api.got()
			if len(got) != tt.arrivals {
				t.Fatalf("%d arrivals, want %d", len(got), tt.arrivals)
			}
			if tt.arrivals == 2 && err != nil {
				t.Errorf("error after a successful retry: %v", err)
			}
			var apiErr *APIError
			if tt.arrivals == 1 && (!errors.As(err, &apiErr) || apiErr.StatusCode != tt.status) {
				t.Errorf("error = %v, want the %d answer", err, tt.status)
			}
			for _, a := range got {
				if a.idem != tt.idem {
					t.Errorf("Idempotency-Key sent %q, want %q", a.idem, tt.idem)
				}
			}
		})
	}
}

func TestRetriesAreBounded(t *testing.T) {
	api, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		writeErr(w, http.StatusServiceUnavailable, CodeInternal, "down")
	})
	c := fastClient(t, srv.URL, WithRetry(3, 10*time.Second))
	_, err := c.Me(context.Background())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Me() error = %v, want the last 503", err)
	}
	if n := len(api.got()); n != 3 {
		t.Errorf("%d arrivals, want 3 (WithRetry(3, …))", n)
	}
}

// hangUp answers nothing: the connection is closed under the client.
func hangUp(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

func TestTransportErrors(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		idem     string
		arrivals int
	}{
		{"GET is retried", http.MethodGet, "", 2},
		{"POST with Idempotency-Key is retried", http.MethodPost, "idem_1", 2},
		{"POST without Idempotency-Key is not", http.MethodPost, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api, srv := newFakeAPI(t, func(n int, _ arrival, w http.ResponseWriter) {
				if n == 0 {
					hangUp(t, w)
					return
				}
				writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
			})
			c := fastClient(t, srv.URL)
			_, err := c.Do(context.Background(), Request{Method: tt.method, Path: "/v1/stock-levels", IdempotencyKey: tt.idem}, nil)
			if n := len(api.got()); n != tt.arrivals {
				t.Fatalf("%d arrivals, want %d", n, tt.arrivals)
			}
			if (err != nil) != (tt.arrivals == 1) {
				t.Errorf("error = %v", err)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	testEnded := make(chan struct{})
	_, srv := newFakeAPI(t, func(int, arrival, http.ResponseWriter) { <-testEnded })
	t.Cleanup(func() { close(testEnded) }) // runs before srv.Close
	const timeout = 200 * time.Millisecond
	c := fastClient(t, srv.URL, WithRequestTimeout(timeout), WithRetry(1, time.Minute))
	start := time.Now()
	_, err := c.Me(context.Background())
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Me() error = %v, want a deadline error", err)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Errorf("returned after %v, want just after %v", took, timeout)
	}
}

// Each attempt has its own timeout: a hung first attempt does not doom the call.
func TestRequestTimeoutIsPerAttempt(t *testing.T) {
	testEnded := make(chan struct{})
	api, srv := newFakeAPI(t, func(n int, _ arrival, w http.ResponseWriter) {
		if n == 0 {
			<-testEnded
			return
		}
		writeJSON(w, http.StatusOK, sampleMe("key_1"))
	})
	t.Cleanup(func() { close(testEnded) })
	c := fastClient(t, srv.URL, WithRequestTimeout(200*time.Millisecond))
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatalf("Me() error = %v, want success on the second attempt", err)
	}
	if n := len(api.got()); n != 2 {
		t.Errorf("%d arrivals, want 2", n)
	}
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	api, srv := newFakeAPI(t, func(_ int, _ arrival, w http.ResponseWriter) {
		cancel()
		writeErr(w, http.StatusServiceUnavailable, CodeInternal, "down")
	})
	c := fastClient(t, srv.URL, WithRetry(6, time.Minute))
	if _, err := c.Me(ctx); err == nil {
		t.Fatal("Me() succeeded after its context was cancelled")
	}
	if n := len(api.got()); n != 1 {
		t.Errorf("%d arrivals after cancel, want 1", n)
	}
}
