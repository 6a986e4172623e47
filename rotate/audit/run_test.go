package audit

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/emulator/emutest"
)

// logReads records the execution-log requests a client sends.
type logReads struct {
	mu    sync.Mutex
	reads []http.Request
	next  http.RoundTripper
}

func (l *logReads) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/execution-log" {
		l.mu.Lock()
		l.reads = append(l.reads, *r)
		l.mu.Unlock()
	}
	return l.next.RoundTrip(r)
}

// stranger calls the API with key from addr (through the emulator's
// trusted X-Forwarded-For) as ua.
func stranger(t *testing.T, url, key, method, path, addr, ua string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Forwarded-For", addr)
	req.Header.Set("User-Agent", ua)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Against a real emulator holding the demo seed and a bulk log over three
// pages: every key is audited from one walk through the log, each page read
// once, for every key, and the stranger's calls on the nightly key are the
// findings, with the admin's own reads and the seed's usual callers clean.
func TestRunReadsTheLogOnce(t *testing.T) {
	ctx := context.Background()
	emu, url := emutest.Start(t, emulator.Config{TrustForwardedFor: true})
	seed, err := emu.SeedDemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emu.SeedBulk(ctx, 3, 2500); err != nil {
		t.Fatal(err)
	}
	if code := stranger(t, url, seed.AutomationKey, "GET", "/v1/stock-levels", "192.0.2.66", "curl/8.5.0"); code != 200 {
		t.Fatalf("the stranger's call: %d", code)
	}
	if code := stranger(t, url, seed.AutomationKey, "GET", "/v1/api-keys", "203.0.113.7", "stock-sync/1.4"); code != 403 {
		t.Fatalf("the automation key listing keys: %d", code)
	}
	reads := &logReads{next: http.DefaultTransport}
	api, err := client.New(url, client.WithKeys(seed.AdminToken), client.WithUserAgent("plana/test"),
		client.WithHTTPClient(&http.Client{Transport: reads}))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := api.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	now, err := Now(api)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(ctx, api, keys, Options{Now: now, Since: 24 * time.Hour, Baseline: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	if len(reads.reads) != r.Log.Pages || r.Log.Pages < 3 || r.Log.Entries < 2500 {
		t.Fatalf("%d log requests for %d pages of %d entries", len(reads.reads), r.Log.Pages, r.Log.Entries)
	}
	tokens := map[string]bool{}
	for _, rq := range reads.reads {
		q := rq.URL.Query()
		if q.Get("key_id") != "" || q.Get("since") != r.BaselineSince.Format(time.RFC3339Nano) || q.Get("until") != now.Format(time.RFC3339Nano) {
			t.Errorf("a read not for every key over the whole range: %s", rq.URL.RawQuery)
		}
		if tokens[q.Get("page_token")] {
			t.Errorf("page %q read twice", q.Get("page_token"))
		}
		tokens[q.Get("page_token")] = true
	}

	var flagged []string
	for _, kr := range r.Keys {
		if kr.Verdict != Clean {
			flagged = append(flagged, kr.Key.Name+" "+kr.Verdict)
		}
	}
	if !slices.Equal(flagged, []string{"Nightly stock sync (2025) flagged"}) {
		t.Fatalf("verdicts %q", flagged)
	}
	kr := r.Keys[0]
	want := []string{"new-source 192.0.2.0/24 ×1", "new-user-agent curl ×1", "new-path GET /v1/api-keys ×1"}
	if !slices.Equal(findings(kr), want) {
		t.Errorf("findings %q, want %q", findings(kr), want)
	}
	if f := kr.Findings[0]; f.Calls[0].SourceIP != "192.0.2.66" || f.Calls[0].UserAgent != "curl/8.5.0" || f.Calls[0].Path != "/v1/stock-levels" ||
		f.Why[:len("192.0.2.66 never seen in 30 days; known: 203.0.113.0/24 (stock-sync)")] != "192.0.2.66 never seen in 30 days; known: 203.0.113.0/24 (stock-sync)" {
		t.Errorf("finding %+v", f)
	}
	if r.Log.PlanaReads == 0 {
		t.Error("the audit's own reads were not recognised")
	}

	// One key: the log is read for that key alone.
	reads.reads = nil
	var nightly client.APIKey
	for _, k := range keys {
		if k.Name == "Nightly stock sync (2025)" {
			nightly = k
		}
	}
	r, err = Run(ctx, api, []client.APIKey{nightly}, Options{Now: now, Since: 24 * time.Hour, Baseline: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(reads.reads) != 1 || reads.reads[0].URL.Query().Get("key_id") != nightly.ID || r.Flagged != 1 {
		t.Errorf("%d reads (%v), %d flagged", len(reads.reads), reads.reads, r.Flagged)
	}
}
