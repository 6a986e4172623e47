package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
)

// TestProcess runs bos-emulator as users and other packages' tests do: a
// real binary, a real port, signals.
func TestProcess(t *testing.T) {
	dir := t.TempDir()
	bin := buildEmulator(t)
	db := filepath.Join(dir, "data", "bos.db")
	tokenFile := filepath.Join(dir, "secrets", "token")
	envFile := filepath.Join(dir, "secrets", "automation.env")
	memberFile := filepath.Join(dir, "secrets", "member-token")
	args := []string{"--listen", "127.0.0.1:0", "--db", db, "--seed", "demo", "--token-file", tokenFile,
		"--member-token-file", memberFile, "--automation-env-file", envFile, "--bcrypt-cost", "4", "--dev-endpoints"}

	url, stderr, wait, stop := start(t, bin, args...)
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tokenFile, memberFile, envFile} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v, want 0600", f, err, fi.Mode())
		}
	}
	automation, _ := os.ReadFile(envFile)
	if !regexp.MustCompile(`^PLANA_KEY=pa_live_[0-9A-Za-z]{46}\n$`).Match(automation) {
		t.Fatal("the automation env file is not one PLANA_KEY= line")
	}
	tok := strings.TrimSpace(string(token))
	req, _ := http.NewRequest("GET", url+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/v1/me: %d", resp.StatusCode)
	}
	// The member's token is a key of the member's own, not the admin's.
	member, _ := os.ReadFile(memberFile)
	memberTok := strings.TrimSpace(string(member))
	req, _ = http.NewRequest("GET", url+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+memberTok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me client.Me
	err = json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || me.User.Role != "member" || me.User.Email != "ben@example.com" || !slices.Contains(me.Key.Scopes, "keys:manage") {
		t.Fatalf("/v1/me with the member's token: HTTP %d, %+v, %v", resp.StatusCode, me.User, err)
	}
	stop(syscall.SIGTERM)
	if code := wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, stderr())
	}
	logged := stderr()
	if strings.Contains(logged, tok) || strings.Contains(logged, memberTok) || strings.Contains(logged, strings.TrimPrefix(strings.TrimSpace(string(automation)), "PLANA_KEY=")) {
		t.Fatal("stderr holds a plaintext key")
	}
	if !strings.Contains(logged, "GET /v1/me 200") {
		t.Fatalf("no request line in stderr:\n%s", logged)
	}

	// The database reopens with the seed and the call above in it.
	s, err := emulator.New(emulator.Config{DBPath: db, BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeedDemo(context.Background()); !errors.Is(err, emulator.ErrAlreadySeeded) {
		t.Fatalf("reopened database is not seeded: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A second start on the seeded database issues nothing, leaves the
	// token file alone and still answers the old token; SIGINT stops it.
	url, stderr, wait, stop = start(t, bin, append(args, "--quiet")...)
	if again, _ := os.ReadFile(tokenFile); string(again) != string(token) {
		t.Fatal("the token file was rewritten")
	}
	if again, _ := os.ReadFile(memberFile); string(again) != string(member) {
		t.Fatal("the member's token file was rewritten")
	}
	req, _ = http.NewRequest("GET", url+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("old token after restart: %v", err)
	} else {
		resp.Body.Close()
	}
	stop(syscall.SIGINT)
	if code := wait(); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
	if out := stderr(); !strings.Contains(out, "already seeded") || strings.Contains(out, "GET /v1/me") {
		t.Fatalf("stderr with --quiet on a seeded database:\n%s", out)
	}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildOut  []byte
)

// buildEmulator builds the binary once for all the tests of the package.
func buildEmulator(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bos-emulator-test")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "bos-emulator")
		buildOut, buildErr = exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return builtBin
}

// A second bos-emulator on the database of a running one is refused, with
// an error naming the first's pid and the lock file, and the first goes on
// serving; once the first has stopped, the database opens again.
func TestSecondProcessOnOneDatabaseIsRefused(t *testing.T) {
	bin := buildEmulator(t)
	db := filepath.Join(t.TempDir(), "bos.db")
	args := []string{"--listen", "127.0.0.1:0", "--db", db, "--bcrypt-cost", "4", "--quiet"}
	url, _, wait, stop := start(t, bin, args...)

	second := exec.Command(bin, args...)
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("the second process: %v, want exit 1\n%s", err, out)
	}
	pid, _ := os.ReadFile(db + ".lock")
	for _, want := range []string{db + ".lock", "process " + strings.TrimSpace(string(pid)), "one bos-emulator per database"} {
		if !strings.Contains(string(out), want) || strings.TrimSpace(string(pid)) == "" {
			t.Errorf("the refusal does not name %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "listening") {
		t.Fatalf("the second process listened:\n%s", out)
	}
	if resp, err := http.Get(url + "/v1/me"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("the first process stopped answering: %v", err)
	} else {
		resp.Body.Close()
	}
	stop(syscall.SIGTERM)
	if code := wait(); code != 0 {
		t.Fatalf("the first process exited %d", code)
	}
	_, _, wait, stop = start(t, bin, args...)
	stop(syscall.SIGTERM)
	if code := wait(); code != 0 {
		t.Fatalf("a new process on the freed database exited %d", code)
	}
}

// The lock follows the file: a second process reaching the database through
// a symlink or a hard link is refused as well, before it listens, and the
// first keeps serving, writes included.
func TestSecondProcessThroughAnotherNameIsRefused(t *testing.T) {
	bin := buildEmulator(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "bos.db")
	tokenFile := filepath.Join(dir, "token")
	url, _, wait, stop := start(t, bin, "--listen", "127.0.0.1:0", "--db", db, "--bcrypt-cost", "4", "--quiet",
		"--seed", "demo", "--token-file", tokenFile)
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	symlink, hardlink := filepath.Join(other, "symlink.db"), filepath.Join(other, "hardlink.db")
	if err := os.Symlink(db, symlink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(db, hardlink); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{symlink, hardlink} {
		// A second process that is not refused serves until killed.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--listen", "127.0.0.1:0", "--db", name, "--bcrypt-cost", "4", "--quiet").CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("a second process on %s: %v, want exit 1\n%s", filepath.Base(name), err, out)
		}
		if !strings.Contains(string(out), "database in use") || !strings.Contains(string(out), "one bos-emulator per database") || strings.Contains(string(out), "listening") {
			t.Errorf("a second process on %s:\n%s", filepath.Base(name), out)
		}
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url+"/v1/api-keys", strings.NewReader(`{"name":"after the refusals","scopes":["stock:read"]}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("the first process after the refusals: %v", err)
	} else {
		resp.Body.Close()
	}
	stop(syscall.SIGTERM)
	if code := wait(); code != 0 {
		t.Fatalf("the first process exited %d", code)
	}
}

func TestHelpSaysOneProcessPerDatabase(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"-h"}, &out); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	if !strings.Contains(out.String(), "One process per database") || !strings.Contains(out.String(), "-db") {
		t.Fatalf("help:\n%s", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--seed", "big"},
		{"--token-file", "x"},
		{"--member-token-file", "x"},
		{"--max-conns", "0"},
		{"--faults", "rate=2,kinds=500"},
		{"--last-used-granularity", "often"},
		{"stray"},
	} {
		if code := run(args, io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// Dev endpoints move the clock and hold requests: only on loopback. The
// refusal comes before the database is touched.
func TestDevEndpointsOnlyOnLoopback(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bos.db")
	for _, listen := range []string{"0.0.0.0:8787", ":8787", "[::]:8787", "192.0.2.1:8787", "bos.example.com:8787", "8787"} {
		var out strings.Builder
		if code := run([]string{"--dev-endpoints", "--listen", listen, "--db", db}, &out); code != 2 {
			t.Errorf("--dev-endpoints --listen %s: exit %d, want 2", listen, code)
		}
		if !strings.Contains(out.String(), "--dev-endpoints needs a loopback --listen") || !strings.Contains(out.String(), listen) {
			t.Errorf("--listen %s: the refusal does not say why:\n%s", listen, out.String())
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start touched the database: %v", err)
	}
	for _, listen := range []string{"127.0.0.1:0", "127.0.0.2:8787", "[::1]:0", "localhost:8787"} {
		if !loopback(listen) {
			t.Errorf("%s is loopback", listen)
		}
	}
}

// A trusted X-Forwarded-For lets any caller write any source address into
// the log: only on loopback, refused before the database is touched.
func TestTrustForwardedForOnlyOnLoopback(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bos.db")
	for _, listen := range []string{"0.0.0.0:8787", ":8787", "[::]:8787", "192.0.2.1:8787", "bos.example.com:8787"} {
		var out strings.Builder
		if code := run([]string{"--trust-forwarded-for", "--listen", listen, "--db", db}, &out); code != 2 {
			t.Errorf("--trust-forwarded-for --listen %s: exit %d, want 2", listen, code)
		}
		if !strings.Contains(out.String(), "--trust-forwarded-for needs a loopback --listen") || !strings.Contains(out.String(), listen) {
			t.Errorf("--listen %s: the refusal does not say why:\n%s", listen, out.String())
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused start touched the database: %v", err)
	}
}

// start runs bin and returns the URL from its first stderr line.
func start(t *testing.T, bin string, args ...string) (url string, stderr func() string, wait func() int, signal func(os.Signal)) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	rd := bufio.NewReader(pipe)
	first := make(chan string, 1)
	go func() {
		line, _ := rd.ReadString('\n')
		first <- line
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(60 * time.Second):
		t.Fatal("no first line on stderr")
	}
	if !strings.HasPrefix(line, "bos-emulator: listening on http://") {
		t.Fatalf("first stderr line %q", line)
	}
	url = regexp.MustCompile(`http://\S+`).FindString(line)
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(rd)
		rest <- line + string(b)
	}()
	var all string
	var got bool
	stderr = func() string {
		if !got {
			all, got = <-rest, true
		}
		return all
	}
	wait = func() int {
		stderr() // drain the pipe before Wait closes it
		cmd.Wait()
		return cmd.ProcessState.ExitCode()
	}
	return url, stderr, wait, func(s os.Signal) { cmd.Process.Signal(s) }
}
