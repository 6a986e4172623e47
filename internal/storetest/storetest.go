// Package storetest starts the real secret stores (a Kubernetes API server,
// the kumo AWS emulator, sops with age, pass with gpg) for a test, on
// loopback, and stops them when the test ends.
//
// The tools come from scripts/stores/install.sh: the Go-built ones from its
// cache at the versions pinned in scripts/stores/versions, the Debian ones
// from PATH. A missing tool skips the test, with the command that installs
// it, unless PLANA_REQUIRE_STORES=1 (CI), where it fails.
package storetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the variable that turns a missing store into a failure.
const RequireEnv = "PLANA_REQUIRE_STORES"

// moduleRoot is the directory holding go.mod, found upwards from the test's
// working directory (its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Versions reads scripts/stores/versions: the pinned version of each store
// that install.sh builds.
func Versions() (map[string]string, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, "scripts", "stores", "versions"))
	if err != nil {
		return nil, err
	}
	v := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("scripts/stores/versions: %q is not NAME=VERSION", line)
		}
		v[k] = val
	}
	return v, sc.Err()
}

// CacheDir is where install.sh puts the Go-built stores.
func CacheDir() string {
	if d := os.Getenv("PLANA_STORES_CACHE"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "plana-stores")
}

// missing skips the test (or fails it under PLANA_REQUIRE_STORES=1) for a
// store whose tools are not installed.
func missing(t testing.TB, kind, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s: install it with `bash scripts/stores/install.sh %s` (or `make test-stores`)", what, kind)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s=1 but %s", RequireEnv, msg)
	}
	t.Skip(msg + "; set " + RequireEnv + "=1 to fail instead")
}

// built is the path of a binary install.sh built for kind, at the version
// versions names under versionVar.
func built(t testing.TB, kind, dir, versionVar, bin string) string {
	t.Helper()
	v, err := Versions()
	if err != nil {
		t.Fatalf("reading the pinned store versions: %v", err)
	}
	p := filepath.Join(CacheDir(), dir+"-"+v[versionVar], bin)
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), ".complete")); err != nil {
		missing(t, kind, fmt.Sprintf("%s %s is not built in %s", bin, v[versionVar], filepath.Dir(p)))
	}
	return p
}

// onPath is the path of a Debian-installed command.
func onPath(t testing.TB, kind, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		missing(t, kind, bin+" is not on PATH")
	}
	return p
}

// FreePort is a loopback TCP port that nothing listened on a moment ago,
// for servers that cannot be given port 0 and say which port they took.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ShortTempDir is a fresh directory with a short path, removed when the
// test ends: gpg-agent's socket path must fit in 108 bytes, which a deep
// t.TempDir() may not.
func ShortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// server is a store's process, started in a process group of its own so
// that nothing it starts outlives the test, with its output in a file the
// test can read (and scan for keys).
type server struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

var (
	logsMu sync.Mutex
	logs   []string
)

// ServerLogs is everything the servers started by this test binary wrote,
// for a test that scans it for key-shaped strings.
func ServerLogs(t testing.TB) string {
	t.Helper()
	logsMu.Lock()
	defer logsMu.Unlock()
	var b strings.Builder
	for _, p := range logs {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func start(t testing.TB, name string, env []string, bin string, args ...string) *server {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	f.Close()
	s := &server{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	logsMu.Lock()
	logs = append(logs, logPath)
	logsMu.Unlock()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		if t.Failed() {
			t.Logf("%s's output (%s):\n%s", name, logPath, s.tail())
		}
	})
	return s
}

// tail is the end of the server's output, for a failure message.
func (s *server) tail() string {
	data, _ := os.ReadFile(s.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// waitReady polls ready until it reports nil, the process exits, or the
// deadline passes.
func (s *server) waitReady(t testing.TB, within time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("%s exited before it was ready (%v):\n%s", s.name, s.err, s.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s: %v\n%s", s.name, within, err, s.tail())
		}
	}
}

// run runs a tool to completion with stdin, returning its stdout; its
// stderr goes into the error.
func run(ctx context.Context, env []string, stdin string, bin string, args ...string) (string, error) {
	return runIn(ctx, "", env, stdin, bin, args...)
}

// runIn is run in directory dir.
func runIn(ctx context.Context, dir string, env []string, stdin string, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// baseEnv is the test process's environment without PLANA_TOKEN (which a
// test may set to see that no child gets it) and with overrides, later ones
// winning.
func baseEnv(overrides ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PLANA_TOKEN=") {
			env = append(env, e)
		}
	}
	for _, kv := range overrides {
		k, _, _ := strings.Cut(kv, "=")
		filtered := env[:0:0]
		for _, e := range env {
			if !strings.HasPrefix(e, k+"=") {
				filtered = append(filtered, e)
			}
		}
		env = append(filtered, kv)
	}
	return env
}

// PrependPath puts dir first on PATH for the rest of the test, so a client
// that finds its tool on PATH finds the pinned build.
func PrependPath(t testing.TB, dir string) {
	t.Helper()
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

const keyAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewKey is a fresh key-shaped secret (pa_test_ and 46 characters), for
// values that must never show up in output.
func NewKey(t testing.TB) string {
	t.Helper()
	b := []byte("pa_test_")
	for range 46 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(keyAlphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, keyAlphabet[n.Int64()])
	}
	return string(b)
}

var keyShape = regexp.MustCompile(`pa_(live|test)_[0-9A-Za-z]{46}`)

// AssertNoKeys fails the test when any of texts holds a key-shaped string:
// error messages, tool and server output must never carry a plaintext.
func AssertNoKeys(t testing.TB, what string, texts ...string) {
	t.Helper()
	for i, s := range texts {
		if m := keyShape.FindString(s); m != "" {
			t.Errorf("%s (%d) holds a key-shaped string (%s…)", what, i, m[:16])
		}
	}
}

// Spy puts a wrapper for each command in names first on PATH: it appends
// its arguments and its environment to the returned log, then runs the real
// command (the one PATH found before). A test reads the log to see that no
// key reached a child's argv or environment.
func Spy(t testing.TB, names ...string) (logPath string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "spy.log")
	for _, name := range names {
		real, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("spy: %s is not on PATH", name)
		}
		script := fmt.Sprintf("#!/bin/sh\n{ echo \"argv: $0 $*\"; env | sed 's/^/env: /'; } >>'%s'\nexec '%s' \"$@\"\n", logPath, real)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	PrependPath(t, dir)
	return logPath
}

// AssertSpiedClean fails the test when the commands Spy watched got a key
// in their arguments or environment, or got PLANA_TOKEN, or never ran.
func AssertSpiedClean(t testing.TB, logPath string) {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("the spied commands never ran: %v", err)
	}
	AssertNoKeys(t, "a child's argv or environment", string(data))
	if strings.Contains(string(data), "env: PLANA_TOKEN=") {
		t.Error("a child process was given PLANA_TOKEN")
	}
}
