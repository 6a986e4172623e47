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
// Its seeds, one per answer of the contract and per bug it found, are in
// testdata/fuzz/FuzzDecodeAnswer.
func FuzzDecodeAnswer(f *testing.F) {
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
