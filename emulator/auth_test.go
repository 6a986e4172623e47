package emulator

import (
	"bufio"
	"crypto/sha256"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
)

func TestMintedKeyFormat(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 20; i++ {
		p, k := e.mint(e.admin, "format", "stock:read")
		if client.KeyLen != 54 || len(p) != 54 || len(p) >= 72 {
			t.Fatalf("key is %d bytes, want 54 (under bcrypt's 72)", len(p))
		}
		parsed, err := client.ParseKey(p)
		if err != nil {
			t.Fatalf("minted key does not parse: %v", err)
		}
		if parsed.Prefix != k.Prefix || !strings.HasPrefix(k.Prefix, client.LivePrefix) {
			t.Fatalf("prefix %q, api key says %q", parsed.Prefix, k.Prefix)
		}
		if !strings.HasPrefix(k.ID, "key_") || len(k.ID) != 30 {
			t.Fatalf("id %q", k.ID)
		}
	}
}

func TestRandomBase62Uniform(t *testing.T) {
	counts := map[rune]int{}
	const n = 62 * 400
	for _, c := range randomBase62(n) {
		counts[c]++
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62", len(counts))
	}
	// Modulo bias would give the first 8 characters 5/4 of the others' share.
	for c, k := range counts {
		if k < 250 || k > 560 {
			t.Errorf("character %q drawn %d times, expected about 400", c, k)
		}
	}
}

func TestMe(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/me", e.memberToken, nil)
	e.want(r, 200, "")
	me := decode[client.Me](t, r)
	if me.User.ID != e.member.ID || me.User.Email != "ben@example.com" || me.User.Role != "member" {
		t.Errorf("user %+v", me.User)
	}
	if me.Workspace.ID == "" || me.Workspace.Name == "" || me.Key.ID != e.memberKey.ID || me.Key.Prefix != e.memberKey.Prefix {
		t.Errorf("me %+v", me)
	}
	if d, err := http.ParseTime(r.header.Get("Date")); err != nil || d.Sub(e.s.Now()).Abs() > 2*time.Second {
		t.Errorf("Date %q: %v", r.header.Get("Date"), err)
	}

	// Any active key may call /v1/me, whatever its scopes: it is how plana
	// checks a brand-new key.
	tok, _ := e.mint(e.admin, "no manage", "stock:read")
	e.want(e.do("GET", "/v1/me", tok, nil), 200, "")
	e.want(e.do("POST", "/v1/me", tok, nil), 405, client.CodeInvalidRequest)
}

func TestBadCredentialsChangeNothing(t *testing.T) {
	e := newEnv(t)
	valid := e.adminToken
	parsed, _ := client.ParseKey(valid)
	otherSecret := client.FormatKey("live", parsed.PublicID, strings.Repeat("x", client.SecretLen))
	flipped := []byte(valid)
	flipped[20] ^= 'a' ^ 'b'
	if flipped[20] == valid[20] {
		flipped[20] = 'Q'
	}
	unknown := client.FormatKey("live", "ZZZZZZZZ", strings.Repeat("y", client.SecretLen))
	testEnv := client.FormatKey("test", parsed.PublicID, valid[16:48])

	cases := []struct {
		name, header string
		bcrypt       bool // the shape is right, so only bcrypt can refuse it
	}{
		{"empty header", "", false},
		{"bearer only", "Bearer ", false},
		{"other scheme", "Basic " + valid, false},
		{"two tokens", "Bearer " + valid + " " + valid, false},
		{"prefix only", "Bearer pa_live_", false},
		{"public prefix", "Bearer " + parsed.Prefix, false},
		{"wrong prefix", "Bearer pk_live_" + valid[8:], false},
		{"bad checksum", "Bearer " + valid[:53] + string(rune('0'+(valid[53]-'0'+1)%10)), false},
		{"mistyped character", "Bearer " + string(flipped), false},
		{"71 bytes", "Bearer " + valid + strings.Repeat("A", 17), false},
		{"72 bytes", "Bearer " + valid + strings.Repeat("A", 18), false},
		{"73 bytes", "Bearer " + valid + strings.Repeat("A", 19), false},
		{"10000 bytes", "Bearer " + valid + strings.Repeat("A", 10000-54), false},
		{"valid key then a suffix past 72 bytes", "Bearer " + valid + strings.Repeat("B", 40), false},
		{"unknown public id", "Bearer " + unknown, false},
		{"test env of a live key", "Bearer " + testEnv, false},
		{"other secret, same public id", "Bearer " + otherSecret, true},
	}
	keys, logs := e.count("api_keys"), e.count("execution_log")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.s.bcryptCalls.Load()
			req, _ := http.NewRequest("GET", e.ts.URL+"/v1/api-keys", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if got := e.s.bcryptCalls.Load() - before; (got == 1) != c.bcrypt || got > 1 {
				t.Fatalf("%d bcrypt comparisons", got)
			}
		})
	}
	if e.count("api_keys") != keys || e.count("execution_log") != logs {
		t.Fatal("a refused request changed the database")
	}
	if strings.Contains(e.log.String(), valid[len(client.LivePrefix)+client.PublicIDLen:]) {
		t.Fatal("the request log holds a presented secret")
	}
}

// rawRequest writes bytes Go's client refuses to send (NUL, bare CR or LF in a
// header) and returns the status line's code.
func rawRequest(t *testing.T, addr, request string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHeaderControlCharacters(t *testing.T) {
	e := newEnv(t)
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	valid := e.adminToken
	logs := e.count("execution_log")
	for name, auth := range map[string]string{
		"NUL inside":    "Bearer " + valid[:20] + "\x00" + valid[20:],
		"NUL after":     "Bearer " + valid + "\x00",
		"CR inside":     "Bearer " + valid[:20] + "\r" + valid[20:],
		"CR at the end": "Bearer " + valid + "\r",
		"LF inside":     "Bearer " + valid[:20] + "\n" + valid[20:],
		"tab separator": "Bearer\t" + valid,
		"DEL":           "Bearer " + valid + "\x7f",
		"non-ASCII":     "Bearer " + valid + "é",
	} {
		code := rawRequest(t, addr, "GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: "+auth+"\r\nConnection: close\r\n\r\n")
		if code != 400 && code != 401 {
			t.Errorf("%s: status %d, want 400 or 401", name, code)
		}
	}
	if e.count("execution_log") != logs {
		t.Fatal("a refused request was logged")
	}
	if code := rawRequest(t, addr, "GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: bearer "+valid+"\r\nConnection: close\r\n\r\n"); code != 200 {
		t.Fatalf("lower-case scheme: %d, want 200", code)
	}
}

func TestSingleflightOneBcryptForConcurrentFirstUse(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BcryptCost = 8 })
	tok, _ := e.mint(e.admin, "cold", "stock:read")
	before := e.s.bcryptCalls.Load()
	const n = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if status, ok := e.callStock(tok); ok {
				codes <- status
			}
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
	}
	if got := e.s.bcryptCalls.Load() - before; got != 1 {
		t.Fatalf("%d bcrypt comparisons for %d concurrent first uses, want 1", got, n)
	}
	e.want(e.do("GET", "/v1/me", tok, nil), 200, "")
	if got := e.s.bcryptCalls.Load() - before; got != 1 {
		t.Fatalf("a verified key paid bcrypt again (%d)", got)
	}
}

func TestFailedVerificationIsNeverCached(t *testing.T) {
	e := newEnv(t)
	parsed, _ := client.ParseKey(e.adminToken)
	wrong := client.FormatKey("live", parsed.PublicID, strings.Repeat("w", client.SecretLen))
	before := e.s.bcryptCalls.Load()
	for i := 0; i < 3; i++ {
		e.want(e.do("GET", "/v1/me", wrong, nil), 401, client.CodeUnauthenticated)
	}
	if got := e.s.bcryptCalls.Load() - before; got != 3 {
		t.Fatalf("%d bcrypt comparisons for 3 failures, want 3 (failures must not be cached)", got)
	}
	if _, ok := e.s.cache.get(sha256.Sum256([]byte(wrong))); ok {
		t.Fatal("a failed key is in the verified cache")
	}
	// The right key still works after the failures.
	e.want(e.do("GET", "/v1/me", e.adminToken, nil), 200, "")
}

func TestRevokedKeyRefusedAtOnce(t *testing.T) {
	e := newEnv(t)
	tok, k := e.mint(e.admin, "to revoke", "stock:read")
	e.want(e.do("GET", "/v1/stock-levels", tok, nil), 200, "")
	sum := sha256.Sum256([]byte(tok))
	if _, ok := e.s.cache.get(sum); !ok {
		t.Fatal("a verified key is not cached")
	}
	r := e.do("POST", "/v1/api-keys/"+k.ID+"/revoke", e.adminToken, nil)
	e.want(r, 200, "")
	revokedAt := time.Now()
	if c, ok := e.s.cache.get(sum); ok && !c.revoked {
		t.Fatal("revoke left the key active in the verified cache")
	}
	refused := eventually(t, time.Second, func() bool {
		return e.do("GET", "/v1/stock-levels", tok, nil).status == 401
	})
	if !refused || time.Since(revokedAt) > time.Second {
		t.Fatal("a revoked key was not refused within 1 s")
	}
	e.want(e.do("GET", "/v1/me", tok, nil), 401, client.CodeUnauthenticated)
}

func TestRequestLogHasNoKeyMaterial(t *testing.T) {
	e := newEnv(t)
	e.do("GET", "/v1/me", e.adminToken, nil)
	_, created := e.createKey(e.adminToken, client.CreateKeyRequest{Name: "logged?", Scopes: []string{"a:b"}})
	logged := e.log.String()
	for _, secret := range []string{e.adminToken, e.memberToken, *created.Plaintext} {
		if strings.Contains(logged, secret) || strings.Contains(logged, secret[16:48]) {
			t.Fatal("the request log holds a plaintext key")
		}
	}
	if !strings.Contains(logged, "GET /v1/me 200") || !strings.Contains(logged, e.adminKey.Prefix) {
		t.Fatalf("request log lacks the request line:\n%s", logged)
	}
}
