package main

import (
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

// A request sent by halves, headers then a body that never comes, is dropped
// once the read timeout passes: the server closes the connection and the
// request creates nothing. So does a connection that sends nothing at all.
func TestHalfSentRequestIsDropped(t *testing.T) {
	s, err := emulator.New(emulator.Config{DBPath: filepath.Join(t.TempDir(), "bos.db"), BcryptCost: 4})
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
	short := serverTimeouts{readHeader: 200 * time.Millisecond, read: 300 * time.Millisecond, idle: 300 * time.Millisecond}
	hs := newHTTPServer(s.Handler(), short)
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	if defaultTimeouts.readHeader <= 0 || defaultTimeouts.read <= 0 || defaultTimeouts.idle <= 0 {
		t.Fatalf("the process runs without a timeout: %+v", defaultTimeouts)
	}

	body := `{"name":"planted","scopes":["stock:read"]}`
	for name, sent := range map[string]string{
		"body held back": fmt.Sprintf("POST /v1/api-keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", tok, len(body), body[:10]),
		"headers held back": "POST /v1/api-keys HTTP/1.1\r\nHost: x\r\n",
		"nothing sent":      "",
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, sent)
		// The deadline only ends a hang; the server is meant to close first.
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = io.ReadAll(conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the server kept the connection open", name)
		}
		conn.Close()
	}

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/api-keys", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	listed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(listed), "planted") {
		t.Fatalf("after the dropped requests: HTTP %d, planted key listed %v", resp.StatusCode, strings.Contains(string(listed), "planted"))
	}
}
