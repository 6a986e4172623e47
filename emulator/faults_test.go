package emulator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	cfg, err := ParseFaults("rate=0.2,kinds=500+429+reset+slow", 7)
	if err != nil || cfg.Rate != 0.2 || strings.Join(cfg.Kinds, " ") != "500 429 reset slow" || cfg.Slow != DefaultSlow || cfg.Seed != 7 {
		t.Fatalf("%+v, %v", cfg, err)
	}
	if cfg, err := ParseFaults("kinds=slow, rate=1, slow=250ms", 1); err != nil || cfg.Slow != 250*time.Millisecond {
		t.Fatalf("%+v, %v", cfg, err)
	}
	if cfg, err := ParseFaults("", 1); err != nil || cfg.Rate != 0 {
		t.Fatalf("empty: %+v, %v", cfg, err)
	}
	for _, bad := range []string{"rate=2,kinds=500", "rate=x,kinds=500", "rate=0.5", "kinds=500", "rate=0.5,kinds=404", "rate=0.5,kinds=500,slow=fast", "rate", "rate=0.5,kinds=500,color=red"} {
		if _, err := ParseFaults(bad, 1); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFaultInjection(t *testing.T) {
	faults, err := ParseFaults("rate=0.7,kinds=500+429+429date+429bad+reset+reset-after+slow,slow=20ms", 42)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Faults = faults })
	tok, k := e.mint(e.admin, "victim", "stock:read")
	// The same seed draws the same sequence, so the test knows what each
	// request should meet.
	expected := newFaultInjector(faults)
	// A fresh connection per request: Go's transport would otherwise retry a
	// reset GET on a reused connection by itself.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	const n = 140
	seen := map[string]int{}
	logged := 0
	for i := 0; i < n; i++ {
		want := expected.draw()
		req, _ := http.NewRequest("GET", e.ts.URL+"/v1/stock-levels", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		prevReset, prevAfter := e.resetKinds()
		start := time.Now()
		resp, err := hc.Do(req)
		var body []byte
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		got := classify(t, e, resp, err, prevReset, prevAfter)
		if want == "" {
			want = "ok"
		}
		if want == faultSlow && got == "ok" {
			if took := time.Since(start); took < 20*time.Millisecond {
				t.Fatalf("request %d: slow fault answered in %v", i, took)
			}
			got = faultSlow
		}
		if got != want {
			t.Fatalf("request %d: got %s, want %s (%s)", i, got, want, body)
		}
		seen[got]++
		if want == "ok" || want == faultSlow || want == faultResetAfter {
			logged++
		}
	}
	for _, kind := range append(faults.Kinds, "ok") {
		if seen[kind] == 0 {
			t.Errorf("no %s in %d requests: %v", kind, n, seen)
		}
	}
	// Faults before handling change nothing; reset-after handled the request.
	if got := len(e.logEntries("?page_size=1000&key_id=" + k.ID)); got != logged {
		t.Fatalf("%d log entries, want %d: %v", got, logged, seen)
	}
	// /_emulator and paths outside /v1 are never faulted.
	for i := 0; i < 20; i++ {
		e.want(e.do("GET", "/_emulator/clock", "", nil), 200, "")
	}
}

func classify(t *testing.T, e *env, resp *http.Response, err error, prevReset, prevAfter int) string {
	t.Helper()
	if err != nil {
		return e.lastResetKind(t, prevReset, prevAfter)
	}
	switch resp.StatusCode {
	case 200:
		return "ok"
	case 500:
		return fault500
	case 429:
		ra := resp.Header.Get("Retry-After")
		if ra == "1" {
			return fault429
		}
		if ra == "soon" {
			return fault429Bad
		}
		at, perr := http.ParseTime(ra)
		date, derr := http.ParseTime(resp.Header.Get("Date"))
		if perr != nil || derr != nil || at.Sub(date) < time.Second || at.Sub(date) > 3*time.Second {
			t.Fatalf("Retry-After %q with Date %q", ra, resp.Header.Get("Date"))
		}
		return fault429Date
	}
	t.Fatalf("unexpected status %d", resp.StatusCode)
	return ""
}

// resetKinds counts the two reset kinds in the request log, where they
// differ: a reset-after request was handled before its connection dropped.
func (e *env) resetKinds() (reset, after int) {
	log := e.log.String()
	return strings.Count(log, " reset "), strings.Count(log, " reset-after ")
}

// lastResetKind waits for the request log to record the reset the client
// just saw (the line is written after the connection drops) and names it.
func (e *env) lastResetKind(t *testing.T, prevReset, prevAfter int) string {
	t.Helper()
	var reset, after int
	eventually(t, 5*time.Second, func() bool {
		reset, after = e.resetKinds()
		return reset+after > prevReset+prevAfter
	})
	switch {
	case after > prevAfter:
		return faultResetAfter
	case reset > prevReset:
		return faultReset
	}
	return "transport error without a reset in the log"
}

func TestSlowFaultHonoursCancellation(t *testing.T) {
	faults, _ := ParseFaults("rate=1,kinds=slow,slow=1h", 1)
	e := newEnv(t, func(c *Config) { c.Faults = faults })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+e.adminToken)
	_, err := e.ts.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	if !eventually(t, 5*time.Second, func() bool { return strings.Contains(e.log.String(), "canceled") }) {
		t.Fatal("the slow handler did not give up on a canceled request")
	}
	if e.count("execution_log") != 0 {
		t.Fatal("a canceled slow request was logged")
	}
}
