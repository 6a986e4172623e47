package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkListKeysPage fetches and decodes one page of 1000 keys, the unit
// of work `plana keys list` repeats; the server answers with bytes encoded
// once, so the figure is the client's.
func BenchmarkListKeysPage(b *testing.B) {
	page := ListKeysResponse{}
	used := time.Date(2026, 11, 1, 2, 0, 3, 0, time.UTC)
	for i := range 1000 {
		k := sampleKey(fmt.Sprintf("key_%026d", i))
		k.LastUsedAt = &used
		page.APIKeys = append(page.APIKeys, k)
	}
	body, err := json.Marshal(page)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	c, err := New(srv.URL, WithKeys(testKey("AAAAAAAA")))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		n := 0
		err := c.ListKeysPages(context.Background(), ListKeysOptions{PageSize: 1000}, func(ks []APIKey) error {
			n += len(ks)
			return nil
		})
		if err != nil || n != 1000 {
			b.Fatalf("%d keys, %v", n, err)
		}
	}
}
