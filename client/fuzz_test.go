package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzKey is key-shaped, so a message echoing it is caught.
var fuzzKey = FormatKey("live", "AB7K2XYZ", strings.Repeat("s", 32))

// FuzzDecodeAnswer gives every API call an arbitrary answer (status,
// Retry-After, request id, body), as a broken proxy or a buggy server
// might: no panic, no endless paging, a typed *APIError for every non-2xx
// with a bounded Retry-After, and never a key-shaped string in an error.
func FuzzDecodeAnswer(f *testing.F) {
	keyJSON := `{"id":"key_1","name":"n","prefix":"pa_live_AB7K2XYZ","scopes":["stock:read"],"status":"active","created_at":"2026-01-02T03:04:05Z","created_by":{"id":"u","email":"a@b"},"last_used_at":null}`
	seeds := []struct {
		op     uint8
		status int
		ra, id string
		body   string
	}{
		{0, 200, "", "req_1", `{"user":{"id":"u","email":"a@b","role":"admin"},"workspace":{"id":"w","name":"W"},"key":` + keyJSON + `}`},
		{1, 200, "", "", keyJSON},
		{2, 200, "", "", `{"api_keys":[` + keyJSON + `],"next_page_token":"p2"}`},
		{3, 201, "", "", `{"api_key":` + keyJSON + `,"plaintext":"` + fuzzKey + `"}`},
		{3, 200, "", "", `{"api_key":` + keyJSON + `,"plaintext":null}`},
		{4, 200, "", "", keyJSON},
		{5, 200, "", "", `{"entries":[{"id":"e","at":"2026-01-02T03:04:05Z","key_id":"key_1","status":200}],"next_page_token":"again"}`},
		{0, 401, "", "", `{"error":{"code":"unauthenticated","message":"bad key ` + fuzzKey + `","request_id":"req_2"}}`},
		{1, 404, "", "", `{"error":{"code":"not_found","message":"no","request_id":"` + fuzzKey + `"}}`},
		{2, 429, "120", "", `{"error":{"code":"rate_limited","message":"slow down"}}`},
		{2, 429, "Wed, 21 Oct 2099 07:28:00 GMT", "", `{}`},
		{2, 429, "-5", "", ``},
		{2, 503, "soon", fuzzKey, `<html>upstream down</html>`},
		{1, 200, "", "", `{"id":"key_1","created_at":"` + fuzzKey + `"}`},
		{3, 201, "", "", `{"api_key":{"id":1},"plaintext":"` + fuzzKey},
		{5, 200, "", "", `{"entries":[{"at":"yesterday"}]}`},
		{0, 200, "", "", "\xff\xfe"},
	}
	for _, s := range seeds {
		f.Add(s.op, s.status, s.ra, s.id, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, op uint8, status int, retryAfter, requestID string, body []byte) {
		if status < 100 || status > 999 {
			t.Skip()
		}
		date := "Mon, 02 Jan 2026 03:04:05 GMT"
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if err := r.Context().Err(); err != nil {
				return nil, err
			}
			h := http.Header{}
			h.Set("Date", date)
			h.Set("Retry-After", retryAfter)
			h.Set("X-Request-Id", requestID)
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})
		c, err := New("http://bos.invalid", WithKeys(fuzzKey), WithHTTPClient(&http.Client{Transport: rt}), WithRetry(1, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		switch op % 6 {
		case 0:
			_, err = c.Me(ctx)
		case 1:
			_, err = c.GetKey(ctx, "key_1")
		case 2:
			_, err = c.ListKeys(ctx, ListKeysOptions{Status: StatusAll})
		case 3:
			var ck *CreatedKey
			ck, err = c.CreateKey(ctx, CreateKeyRequest{Name: "n", Scopes: []string{"stock:read"}}, "idem")
			if err == nil && ck.Plaintext == "" && !ck.Replayed {
				t.Fatal("a create without a plaintext must count as replayed")
			}
		case 4:
			_, err = c.RevokeKey(ctx, "key_1")
		case 5:
			_, err = c.ExecutionLog(ctx, ExecutionLogOptions{KeyID: "key_1"})
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("op %d did not finish on a fixed answer (endless paging?): %v", op%6, err)
		}
		if err != nil && keyPattern.MatchString(err.Error()) {
			t.Fatalf("a key-shaped string in the error: %s", redact(err.Error()))
		}
		if status >= 200 && status <= 299 {
			return
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.StatusCode != status {
			t.Fatalf("HTTP %d: want an *APIError with that status, got %v", status, err)
		}
		if ae.RetryAfter < 0 || ae.RetryAfter > maxRetryAfter {
			t.Fatalf("Retry-After %q became %s", retryAfter, ae.RetryAfter)
		}
	})
}
