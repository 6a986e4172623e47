package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileOf(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := percentileOf(append([]time.Duration(nil), lat...), p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentileOf(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
}

// The load generator counts what the server answered, with the header it
// was given; only a request cut off by the end of the run (one per worker at
// most) goes uncounted.
func TestRunLoadCountsEveryAnswer(t *testing.T) {
	var served, unauthorized atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			unauthorized.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		served.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	res := runLoad(context.Background(), newLoadClient(4), 4, 200*time.Millisecond, getWithKey(srv.URL, "k"))
	if ok := int64(res.ok()); ok == 0 || ok != int64(len(res.samples)) || served.Load() < ok || served.Load() > ok+4 || unauthorized.Load() != 0 {
		t.Fatalf("%d samples, %d ok, server served %d and refused %d", len(res.samples), res.ok(), served.Load(), unauthorized.Load())
	}
	for _, s := range res.samples {
		if s.done < s.sent {
			t.Fatalf("a sample answered before it was sent: %+v", s)
		}
	}
	b := burst(context.Background(), newLoadClient(8), []requestFunc{getWithKey(srv.URL, "k"), getWithKey(srv.URL, "other")})
	if b.ok() != 1 || b.statuses[http.StatusUnauthorized] != 1 {
		t.Fatalf("burst statuses %v", b.statuses)
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"pa_live_x\n":           "pa_live_x",
		"PLANA_KEY=pa_live_y\n": "pa_live_y",
		"\n  \nPLANA_KEY=z":     "z",
	} {
		p := filepath.Join(dir, "f")
		os.WriteFile(p, []byte(content), 0o600)
		if got, err := readKeyFile(p); err != nil || got != want {
			t.Errorf("readKeyFile(%q) = %q, %v; want %q", content, got, err, want)
		}
	}
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600)
	if _, err := readKeyFile(filepath.Join(dir, "empty")); err == nil {
		t.Error("an empty key file was accepted")
	}
}

func TestReportSaysWhatWasMissed(t *testing.T) {
	r := newReport()
	r.goal("throughput", "fast", "1", "≥ 2", false, "Because.")
	r.goal("cli", "small", "1", "≤ 2", true, "")
	r.info("calls", "count", "3")
	md := r.markdown()
	for _, want := range []string{"| throughput | fast | 1 | ≥ 2 | MISSED |", "| cli | small | 1 | ≤ 2 | met |",
		"| calls | count | 3 |  |  |", "- **throughput, fast**: 1 against a goal of ≥ 2. Because.", "## 10. Hot paths found and fixed"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "**cli, small**") {
		t.Error("a goal met is listed as missed")
	}
}

func TestRoute(t *testing.T) {
	for p, want := range map[string]string{
		"/v1/api-keys":              "/v1/api-keys",
		"/v1/api-keys/key_1":        "/v1/api-keys/{id}",
		"/v1/api-keys/key_1/revoke": "/v1/api-keys/{id}/revoke",
		"/v1/execution-log":         "/v1/execution-log",
		"/v1/me":                    "/v1/me",
	} {
		if got := route(p); got != want {
			t.Errorf("route(%q) = %q, want %q", p, got, want)
		}
	}
}
