package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/emulator"
)

// capped is an emulator behind newHTTPServer on loopback, with an admin's
// management key.
type capped struct {
	emu   *emulator.Server
	ln    *connCap
	addr  string
	token string
}

func startCapped(t *testing.T, lim limits) *capped {
	t.Helper()
	s, err := emulator.New(emulator.Config{DBPath: filepath.Join(t.TempDir(), "bos.db"), BcryptCost: 4, DevEndpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "ana@example.com", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.MintKey(ctx, u.ID, "plana admin", []string{"keys:manage"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, l := newHTTPServer(s.Handler(), ln, lim)
	go hs.Serve(l)
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return &capped{emu: s, ln: l.(*connCap), addr: ln.Addr().String(), token: tok}
}

// get makes one authenticated call on a fresh connection; the client's
// timeout only ends a hang.
func (c *capped) get(t *testing.T, path string) (int, error) {
	t.Helper()
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest("GET", "http://"+c.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedByServer reports whether the server has closed conn, looking for at
// most d.
func closedByServer(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// Idle connections past the cap do not starve a client: they sent nothing
// and nothing times them out here (the header timeout is an hour), yet each
// new connection takes the place of the longest idle one, an authenticated
// call is answered, and no more than the cap are ever open.
func TestIdleConnectionsPastTheCapDoNotStarveAClient(t *testing.T) {
	lim := defaultLimits
	lim.conns, lim.header, lim.idle = 8, time.Hour, time.Hour
	c := startCapped(t, lim)
	var idle []net.Conn
	for range 40 {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		idle = append(idle, conn)
	}
	for i := range 3 {
		status, err := c.get(t, "/v1/me")
		if err != nil || status != 200 {
			t.Fatalf("call %d beside 40 idle connections: HTTP %d, %v", i, status, err)
		}
	}
	if n := c.ln.count(); n > lim.conns {
		t.Fatalf("%d connections open, over the cap of %d", n, lim.conns)
	}
	closed := 0
	for _, conn := range idle {
		if closedByServer(conn, 100*time.Millisecond) {
			closed++
		}
	}
	if closed < len(idle)-lim.conns {
		t.Fatalf("%d of %d idle connections closed, want at least %d", closed, len(idle), len(idle)-lim.conns)
	}
}

// A request in the middle of its work keeps its place at the cap: with
// every place taken by requests under way, a new connection waits for one
// to end rather than cutting one off.
func TestRequestsUnderWayKeepTheirPlace(t *testing.T) {
	lim := defaultLimits
	lim.conns = 2
	c := startCapped(t, lim)
	if err := c.emu.ArmHold(emulator.Hold{Method: "GET", Path: "/v1/api-keys", Authenticated: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.emu.ArmHold(emulator.Hold{Method: "GET", Path: "/v1/api-keys", Authenticated: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.emu.ReleaseHolds)
	held := make(chan int, 2)
	for range 2 {
		go func() {
			status, err := c.get(t, "/v1/api-keys")
			if err != nil {
				t.Error(err)
			}
			held <- status
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.ln.count() < 2 || c.ln.busy() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the two held requests never took their places: %d open, %d busy", c.ln.count(), c.ln.busy())
		}
		time.Sleep(5 * time.Millisecond)
	}
	third := make(chan int, 1)
	go func() {
		status, _ := c.get(t, "/v1/me")
		third <- status
	}()
	select {
	case s := <-held:
		t.Fatalf("a held request was cut off (HTTP %d) for a new connection", s)
	case s := <-third:
		t.Fatalf("a third connection was served (HTTP %d) past a cap of 2", s)
	case <-time.After(300 * time.Millisecond):
	}
	c.emu.ReleaseHolds()
	for range 2 {
		if s := <-held; s != 200 {
			t.Errorf("a held request: HTTP %d", s)
		}
	}
	if s := <-third; s != 200 {
		t.Errorf("the third request, once a place was free: HTTP %d", s)
	}
}

// A body sent slowly is cut off within the body deadline, with 408, and
// creates nothing; so are headers held back (the header deadline) and a
// connection that sends nothing at all. A request whose body arrived in time
// may then take longer than the body deadline (a hold keeps it).
func TestSlowRequestsAreCutOff(t *testing.T) {
	lim := defaultLimits
	lim.header, lim.body = 300*time.Millisecond, 300*time.Millisecond
	c := startCapped(t, lim)
	body := `{"name":"planted","scopes":["stock:read"]}`
	for name, sent := range map[string]string{
		"body held back": fmt.Sprintf("POST /v1/api-keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", c.token, len(body), body[:10]),
		"headers held back": "POST /v1/api-keys HTTP/1.1\r\nHost: x\r\n",
		"nothing sent":      "",
	} {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, sent)
		// The deadline only ends a hang; the server is meant to close first.
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		answer, err := io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the server kept the connection open", name)
		}
		if name == "body held back" && !strings.HasPrefix(string(answer), "HTTP/1.1 408 ") {
			t.Errorf("a body held back: answered %q, want 408", firstLine(answer))
		}
		conn.Close()
	}
	if status, err := c.get(t, "/v1/api-keys"); err != nil || status != 200 {
		t.Fatalf("after the slow requests: HTTP %d, %v", status, err)
	}
	if n := countKeys(t, c, "planted"); n != 0 {
		t.Fatalf("a slow create stored %d keys", n)
	}

	// In time, then held past the body deadline: still answered.
	if err := c.emu.ArmHold(emulator.Hold{Method: "POST", Path: "/v1/api-keys", Authenticated: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.emu.ReleaseHolds)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+c.addr+"/v1/api-keys", strings.NewReader(`{"name":"in time","scopes":["stock:read"]}`))
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c.ln.busy() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the create never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Let the body deadline pass while the request is held.
	time.Sleep(3 * lim.body)
	c.emu.ReleaseHolds()
	if s := <-done; s != 201 {
		t.Fatalf("a create held past the body deadline: HTTP %d, want 201", s)
	}
}

// Headers past the cap fitted to the API are refused with 431.
func TestHeadersPastTheCapAreRefused(t *testing.T) {
	c := startCapped(t, defaultLimits)
	req, _ := http.NewRequest("GET", "http://"+c.addr+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("X-Padding", strings.Repeat("p", 16<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("16 KiB of headers: HTTP %d, want 431", resp.StatusCode)
	}
	if status, err := c.get(t, "/v1/me"); err != nil || status != 200 {
		t.Fatalf("an ordinary request: HTTP %d, %v", status, err)
	}
	for name, v := range map[string]any{"conns": defaultLimits.conns, "headerBytes": defaultLimits.headerBytes,
		"header": defaultLimits.header, "body": defaultLimits.body, "write": defaultLimits.write, "handler": defaultLimits.handler, "idle": defaultLimits.idle} {
		if fmt.Sprint(v) == "0" || fmt.Sprint(v) == "0s" {
			t.Errorf("the process runs without a limit on %s", name)
		}
	}
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line
}

func countKeys(t *testing.T, c *capped, name string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+c.addr+"/v1/api-keys", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n += strings.Count(sc.Text(), `"name":"`+name+`"`)
	}
	return n
}
