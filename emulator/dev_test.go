package emulator

import (
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

// A web page can make a browser send a simple request (text/plain, a form)
// to any address, loopback included, and a rebound DNS name can point at
// 127.0.0.1. The dev endpoints move the clock and hold requests: they answer
// only a JSON request, to a loopback Host, without an Origin header, which no
// page can send without a preflight the emulator never grants.
func TestDevEndpointsRefuseBrowsers(t *testing.T) {
	e := newEnv(t)
	before := e.s.Now()
	advance := `{"advance":"400d"}`
	for _, c := range []struct {
		name  string
		extra []string
	}{
		{"text/plain from a page", []string{"Content-Type", "text/plain", "Origin", "http://evil.example"}},
		{"text/plain without an Origin", []string{"Content-Type", "text/plain"}},
		{"a form", []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"no content type", []string{"Content-Type", ""}},
		{"JSON with an Origin", []string{"Origin", "http://evil.example"}},
		{"JSON with a null Origin", []string{"Origin", "null"}},
		{"JSON to a rebound name", []string{"Host", "evil.example:8787"}},
		{"JSON to a public address", []string{"Host", "192.0.2.1"}},
	} {
		r := e.do("POST", "/_emulator/clock", "", advance, c.extra...)
		if r.status != 403 || r.errCode() != client.CodeForbidden || !strings.Contains(r.errMessage(), "Origin") {
			t.Errorf("%s: HTTP %d %s %q, want 403 forbidden saying why", c.name, r.status, r.errCode(), r.errMessage())
		}
		r = e.do("POST", "/_emulator/holds", "", Hold{Method: "GET", Path: "/v1/me"}, c.extra...)
		if r.status != 403 {
			t.Errorf("%s: arming a hold: HTTP %d, want 403", c.name, r.status)
		}
		if r := e.do("GET", "/_emulator/stats", "", nil, c.extra...); r.status != 403 {
			t.Errorf("%s: stats: HTTP %d, want 403", c.name, r.status)
		}
	}
	if d := e.s.Now().Sub(before); d > time.Hour {
		t.Fatalf("a refused request moved the clock by %v", d)
	}
	e.s.holds.mu.Lock()
	armed := len(e.s.holds.armed)
	e.s.holds.mu.Unlock()
	if armed != 0 {
		t.Fatalf("%d holds armed by refused requests", armed)
	}
	// The harness's own requests: JSON, to 127.0.0.1 or localhost, no Origin.
	e.want(e.do("POST", "/_emulator/clock", "", advance, "Content-Type", "application/json; charset=utf-8"), 200, "")
	e.want(e.do("GET", "/_emulator/clock", "", nil, "Host", "localhost"), 200, "")
	e.want(e.do("GET", "/_emulator/stats", "", nil, "Host", "[::1]:8787"), 200, "")
	// The API itself is not a dev endpoint: browsers' rules are not its concern.
	e.want(e.do("GET", "/v1/me", e.adminToken, nil, "Origin", "http://evil.example", "Content-Type", "text/plain"), 200, "")
}
