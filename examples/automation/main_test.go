package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/renameio/v2"
	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/emulator/emutest"
)

// TestMain lets the test binary stand in for the automation binary, so the
// signal handling of main itself is tested in a real process.
func TestMain(m *testing.M) {
	if os.Getenv("AUTOMATION_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

type fixture struct {
	url     string
	admin   *client.Client
	oldKey  string
	newKey  string
	oldInfo client.APIKey
	newInfo client.APIKey
}

func newFixture(t *testing.T, cfg ...emulator.Config) *fixture {
	t.Helper()
	srv, url := emutest.Start(t, append(cfg, emulator.Config{})[0])
	ctx := context.Background()
	user, err := srv.CreateUser(ctx, "ana@example.com", "admin", []string{client.ScopeManage, "stock:read"})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(name string, scopes ...string) (string, client.APIKey) {
		plain, info, err := srv.MintKey(ctx, user.ID, name, scopes, srv.Now())
		if err != nil {
			t.Fatal(err)
		}
		return plain, info
	}
	f := &fixture{url: url}
	adminKey, _ := mint("admin", client.ScopeManage)
	f.oldKey, f.oldInfo = mint("Nightly stock sync (2025)", "stock:read")
	f.newKey, f.newInfo = mint("Nightly stock sync (2026)", "stock:read")
	if f.admin, err = client.New(url, client.WithKeys(adminKey)); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) secrets() []string { return []string{f.oldKey, f.newKey} }

func writeEnv(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := renameio.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readStats(t *testing.T, path string) (Stats, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Stats{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var s Stats
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("stats file is not valid JSON (a torn write?): %v", err)
	}
	return s, true
}

// waitStats polls the stats file until cond holds or the deadline passes.
func waitStats(t *testing.T, path, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, ok := readStats(t, path)
		if ok && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last stats %+v", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func assertNoSecrets(t *testing.T, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains a plaintext key (prefix %s)", where, client.PrefixOf(s))
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// TestRotationWithoutFailedCalls walks the seed's procedure from the
// automation's side: old key only, then new key deployed alongside, then the
// old key revoked, then the old key alone again (the forgotten place).
func TestRotationWithoutFailedCalls(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	envFile, statsFile := filepath.Join(dir, "automation.env"), filepath.Join(dir, "stats.json")
	writeEnv(t, envFile, "# stock sync", "PLANA_KEY="+f.oldKey, "OTHER=kept")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--env-file", envFile, "--api-url", f.url, "--interval", "20ms",
			"--stats-file", statsFile, "--user-agent", "stock-sync-test/1"}, noEnv, &stderr)
	}()

	waitStats(t, statsFile, "calls with the old key", func(s Stats) bool {
		return s.Calls >= 3 && s.LastPrefix == f.oldInfo.Prefix
	})

	writeEnv(t, envFile, "PLANA_KEY_NEW="+f.newKey, "PLANA_KEY="+f.oldKey)
	waitStats(t, statsFile, "the new key to answer", func(s Stats) bool { return s.LastPrefix == f.newInfo.Prefix })

	if _, err := f.admin.RevokeKey(context.Background(), f.oldInfo.ID); err != nil {
		t.Fatal(err)
	}
	before, _ := readStats(t, statsFile)
	s := waitStats(t, statsFile, "calls after the revoke", func(s Stats) bool { return s.Calls >= before.Calls+3 })
	if s.Failures != 0 || s.LastPrefix != f.newInfo.Prefix {
		t.Fatalf("after deploying the new key and revoking the old: %+v, want 0 failures on %s", s, f.newInfo.Prefix)
	}

	// A place still configured with the old key alone fails, visibly.
	writeEnv(t, envFile, "PLANA_KEY="+f.oldKey)
	s = waitStats(t, statsFile, "the revoked key to fail", func(s Stats) bool { return s.Failures > 0 })
	if !strings.Contains(s.LastError, "401") {
		t.Errorf("last_error = %q, want the 401 of a revoked key", s.LastError)
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("run returned %d after cancel, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	final, _ := readStats(t, statsFile)
	if final.Calls < s.Calls || final.Failures < s.Failures {
		t.Errorf("final stats %+v went backwards from %+v", final, s)
	}

	log := stderr.String()
	for _, want := range []string{
		"answered with key " + f.oldInfo.Prefix,
		"answered with key " + f.newInfo.Prefix,
		"env file has PLANA_KEY_NEW=" + f.newInfo.Prefix,
		"failed: GET /v1/stock-levels",
		"stopping after",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// One line per change, not one per call.
	if n := strings.Count(log, "answered with key "+f.newInfo.Prefix); n != 1 {
		t.Errorf("logged the switch to the new key %d times, want once:\n%s", n, log)
	}
	assertNoSecrets(t, "log", log, f.secrets())
	data, _ := os.ReadFile(statsFile)
	assertNoSecrets(t, "stats file", string(data), f.secrets())

	// The execution log attributes the calls to our user agent.
	entries, err := f.admin.ExecutionLog(context.Background(), client.ExecutionLogOptions{KeyID: f.newInfo.ID, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || entries[0].UserAgent != "stock-sync-test/1" || entries[0].Path != "/v1/stock-levels" {
		t.Errorf("execution log for the new key = %+v, want calls to /v1/stock-levels by stock-sync-test/1", entries)
	}
}

// TestWorkers runs several workers at once: their calls add up in one
// stats file, and calls refused because every key was revoked are counted
// apart from other failures.
func TestWorkers(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	envFile, statsFile := filepath.Join(dir, "automation.env"), filepath.Join(dir, "stats.json")
	writeEnv(t, envFile, "PLANA_KEY="+f.oldKey)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--env-file", envFile, "--api-url", f.url, "--interval", "20ms",
			"--stats-file", statsFile, "--workers", "4"}, noEnv, &stderr)
	}()
	waitStats(t, statsFile, "calls", func(s Stats) bool { return s.Calls >= 12 })
	for i := 1; i <= 4; i++ {
		if want := fmt.Sprintf("worker %d: call ", i); !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q: not every worker called:\n%s", want, stderr.String())
		}
	}
	if _, err := f.admin.RevokeKey(context.Background(), f.oldInfo.ID); err != nil {
		t.Fatal(err)
	}
	waitStats(t, statsFile, "refused calls", func(s Stats) bool { return s.Refused >= 4 })
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d after cancel, want 0", code)
	}
	s, _ := readStats(t, statsFile)
	if s.Failures != s.Refused || s.Calls <= s.Failures {
		t.Errorf("final stats %+v: want every failure a refusal, and the calls before the revoke counted", s)
	}
	assertNoSecrets(t, "log", stderr.String(), f.secrets())
}

// TestKeyCmd reads the keys from a command on every call, as an automation
// reading a secrets manager does: a key the store changed answers the
// next call; a command that fails, or prints what is not NAME=VALUE
// lines, fails that call and says so without the key.
func TestKeyCmd(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	store, statsFile := filepath.Join(dir, "store"), filepath.Join(dir, "stats.json")
	writeEnv(t, store, "PLANA_KEY="+f.oldKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Setenv("STORE", store)
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--key-cmd", `cat "$STORE" 2>/dev/null || { echo "store down: $(cat "$STORE.why")" >&2; exit 1; }`, "--api-url", f.url,
			"--interval", "20ms", "--stats-file", statsFile}, noEnv, &stderr)
	}()
	waitStats(t, statsFile, "calls with the old key", func(s Stats) bool { return s.Calls >= 3 && s.LastPrefix == f.oldInfo.Prefix })
	writeEnv(t, store, "PLANA_KEY_NEW="+f.newKey, "PLANA_KEY="+f.oldKey)
	s := waitStats(t, statsFile, "the new key to answer", func(s Stats) bool { return s.LastPrefix == f.newInfo.Prefix })
	if s.Failures != 0 {
		t.Fatalf("%d failed calls while the store changed", s.Failures)
	}
	writeEnv(t, store+".why", "leaked "+f.newKey)
	os.Remove(store)
	s = waitStats(t, statsFile, "a call to fail", func(s Stats) bool { return s.Failures > 0 })
	if !strings.Contains(s.LastError, "--key-cmd: exit status 1: store down: leaked "+f.newInfo.Prefix) {
		t.Errorf("last_error = %q, want the command's stderr, its key redacted", s.LastError)
	}
	writeEnv(t, store, "not a line of names", f.newKey)
	s = waitStats(t, statsFile, "a call to fail on the output", func(s Stats) bool {
		return strings.Contains(s.LastError, "printed something other than NAME=VALUE lines")
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d after cancel, want 0", code)
	}
	log := stderr.String()
	if !strings.Contains(log, "--key-cmd gave PLANA_KEY_NEW="+f.newInfo.Prefix) {
		t.Errorf("log lacks the keys --key-cmd gave:\n%s", log)
	}
	assertNoSecrets(t, "log", log, f.secrets())
	data, _ := os.ReadFile(statsFile)
	assertNoSecrets(t, "stats file", string(data), f.secrets())
}

func TestOnce(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	envFile, statsFile := filepath.Join(dir, "automation.env"), filepath.Join(dir, "stats.json")
	writeEnv(t, envFile, "PLANA_KEY="+f.oldKey)

	var stderr syncBuffer
	if code := run(context.Background(), []string{"--env-file", envFile, "--stats-file", statsFile, "--once"},
		func(k string) string { return map[string]string{"PLANA_API_URL": f.url}[k] }, &stderr); code != exitOK {
		t.Fatalf("--once with a good key: exit %d, want 0; stderr:\n%s", code, stderr.String())
	}
	if s, _ := readStats(t, statsFile); s != (Stats{Calls: 1, LastPrefix: f.oldInfo.Prefix}) {
		t.Errorf("stats = %+v, want one successful call on %s", s, f.oldInfo.Prefix)
	}

	if _, err := f.admin.RevokeKey(context.Background(), f.oldInfo.ID); err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), []string{"--env-file", envFile, "--api-url", f.url, "--stats-file", statsFile, "--once"},
		noEnv, &stderr); code != exitError {
		t.Fatalf("--once with a revoked key: exit %d, want 1", code)
	}
	if s, _ := readStats(t, statsFile); s.Calls != 1 || s.Failures != 1 {
		t.Errorf("stats = %+v, want one failed call", s)
	}
	assertNoSecrets(t, "log", stderr.String(), f.secrets())
}

// --forwarded-for plays a caller from another network: an emulator that
// trusts X-Forwarded-For logs the calls as coming from that address.
func TestForwardedFor(t *testing.T) {
	f := newFixture(t, emulator.Config{TrustForwardedFor: true})
	envFile := filepath.Join(t.TempDir(), "stolen.env")
	writeEnv(t, envFile, "PLANA_KEY="+f.oldKey)
	var stderr syncBuffer
	if code := run(context.Background(), []string{"--env-file", envFile, "--api-url", f.url, "--once",
		"--forwarded-for", "192.0.2.66", "--user-agent", "curl/8.5.0", "--path", "/v1/orders/7"}, noEnv, &stderr); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	es, err := f.admin.ExecutionLog(context.Background(), client.ExecutionLogOptions{KeyID: f.oldInfo.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].SourceIP != "192.0.2.66" || es[0].UserAgent != "curl/8.5.0" || es[0].Path != "/v1/orders/7" {
		t.Fatalf("log %+v, want one call from 192.0.2.66", es)
	}
}

func TestBadEnvFile(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	// A key with one character changed fails its checksum.
	mistyped := f.oldKey[:20] + string(rune(f.oldKey[20]^1)) + f.oldKey[21:]
	tests := []struct {
		name    string
		content *string
		want    string
	}{
		{"missing", nil, "no such file"},
		{"no keys", ptr("OTHER=1\n"), "has neither PLANA_KEY nor PLANA_KEY_NEW"},
		{"mistyped key", ptr("PLANA_KEY=" + mistyped + "\n"), "PLANA_KEY in "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envFile := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".env")
			if tt.content != nil {
				if err := os.WriteFile(envFile, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var stderr syncBuffer
			code := run(context.Background(), []string{"--env-file", envFile, "--api-url", f.url, "--once"}, noEnv, &stderr)
			if code != exitError || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tt.want)
			}
			assertNoSecrets(t, "log", stderr.String(), []string{f.oldKey, mistyped})
		})
	}
}

func ptr(s string) *string { return &s }

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no env file", []string{"--api-url", "http://127.0.0.1:1"}, nil, "--env-file or --key-cmd is required"},
		{"both sources", []string{"--env-file", "x.env", "--key-cmd", "cat x.env"}, nil, "--env-file and --key-cmd both give the keys"},
		{"no API URL", []string{"--env-file", "x.env"}, nil, "pass --api-url or set PLANA_API_URL"},
		{"bad API URL", []string{"--env-file", "x.env", "--api-url", "localhost:8787"}, nil, "invalid API URL"},
		{"bad interval", []string{"--env-file", "x.env", "--interval", "0s"}, map[string]string{"PLANA_API_URL": "http://h"}, "--interval must be positive"},
		{"no workers", []string{"--env-file", "x.env", "--workers", "0"}, map[string]string{"PLANA_API_URL": "http://h"}, "--workers must be from 1 to 1000"},
		{"stray argument", []string{"--env-file", "x.env", "now"}, map[string]string{"PLANA_API_URL": "http://h"}, `unexpected argument "now"`},
		{"unknown flag", []string{"--key", "x"}, nil, "flag provided but not defined: -key"},
		{"bad forwarded-for", []string{"--env-file", "x.env", "--forwarded-for", "elsewhere"}, map[string]string{"PLANA_API_URL": "http://h"}, `--forwarded-for "elsewhere" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			code := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// TestSignalWritesFinalStats runs the real main in a child process and stops
// it the way a supervisor does.
func TestSignalWritesFinalStats(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	envFile, statsFile := filepath.Join(dir, "automation.env"), filepath.Join(dir, "stats.json")
	writeEnv(t, envFile, "PLANA_KEY="+f.oldKey)

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			os.Remove(statsFile)
			cmd := exec.Command(os.Args[0], "--env-file", envFile, "--interval", "50ms", "--stats-file", statsFile)
			cmd.Env = append(os.Environ(), "AUTOMATION_TEST_MAIN=1", "PLANA_API_URL="+f.url)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			waitStats(t, statsFile, "two calls", func(s Stats) bool { return s.Calls >= 2 })
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after %v: %v, want exit 0; stderr:\n%s", sig, err, stderr.String())
			}
			s, _ := readStats(t, statsFile)
			if s.Calls < 2 || s.Failures != 0 || !strings.Contains(stderr.String(), "stopping after") {
				t.Errorf("final stats %+v, stderr:\n%s", s, stderr.String())
			}
		})
	}
}
