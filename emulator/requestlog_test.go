package emulator

import (
	"net/http"
	"strings"
	"testing"
)

// A path that tries to clear the screen, turn the terminal red and forge a
// log line reaches the request log escaped; the execution log, which is
// data, keeps it as it came (clients escape it when they print it).
func TestRequestLogEscapesControlCharacters(t *testing.T) {
	e := newEnv(t)
	const evil = "/v1/%1b%5b2J%1b%5b31mPWNED%0aFAKE-LINE"
	e.want(e.do("GET", evil, e.adminToken, nil), 200, "")
	e.want(e.do("GET", evil, "", nil), 401, "")
	if err := e.s.ArmHold(Hold{Method: "GET", Path: "/v1/*", After: true}); err != nil {
		t.Fatal(err)
	}
	held, _ := http.NewRequest("GET", e.ts.URL+evil, nil)
	held.Header.Set("Authorization", "Bearer "+e.adminToken)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := e.ts.Client().Do(held); err == nil {
			resp.Body.Close()
		}
	}()
	t.Cleanup(func() { e.s.ReleaseHolds(); <-done })
	e.awaitHeld("holding GET", "the request")

	logged := e.log.String()
	if strings.ContainsAny(logged, "\x1b\r") {
		t.Fatalf("the request log holds a raw control character:\n%q", logged)
	}
	for _, line := range strings.Split(strings.TrimSuffix(logged, "\n"), "\n") {
		if !strings.HasPrefix(line, "20") && !strings.HasPrefix(line, "bos-emulator: ") {
			t.Fatalf("a forged line in the request log: %q", line)
		}
	}
	if n := strings.Count(logged, `/v1/\x1b[2J\x1b[31mPWNED\x0aFAKE-LINE`); n != 3 {
		t.Fatalf("%d escaped paths in the request log, want 3 (answered, refused, held):\n%s", n, logged)
	}
	entries := e.logEntries("?key_id=" + e.adminKey.ID)
	found := false
	for _, en := range entries {
		found = found || en.Path == "/v1/\x1b[2J\x1b[31mPWNED\nFAKE-LINE"
	}
	if !found {
		t.Fatalf("the execution log does not keep the path as sent: %+v", entries)
	}
}
