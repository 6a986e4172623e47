// Package rotatetest is the world the rotation packages' tests run in: a
// real emulator on loopback, a management key and a key to rotate, a
// memory keyring, a state directory and an env file, and a Reporter that
// keeps what it was told. It imports nothing of rotate's, so every package
// of it can use it.
package rotatetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/emulator/emutest"
	"github.com/plana-cli/plana/internal/secret"
)

// World is a real emulator, a memory keyring and a state directory.
type World struct {
	T        *testing.T
	Srv      *emulator.Server
	URL      string
	API      *client.Client // the management key's client
	Store    *secret.Memory
	StateDir string
	EnvPath  string // holds PLANA_KEY=Old's plaintext
	Old      client.APIKey
	OldPlain string
	Mgmt     string // the management key's plaintext
}

// New is a World on an emulator with its defaults.
func New(t *testing.T) *World { t.Helper(); return NewConfig(t, emulator.Config{}) }

// NewConfig is New with an emulator configured by cfg (its database,
// bcrypt cost and dev endpoints are the world's own).
func NewConfig(t *testing.T, cfg emulator.Config) *World {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg.DBPath, cfg.BcryptCost, cfg.DevEndpoints = filepath.Join(dir, "bos.db"), 4, true
	srv, url := emutest.Start(t, cfg)
	admin, err := srv.CreateUser(ctx, "ana@example.com", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	mgmt, _, err := srv.MintKey(ctx, admin.ID, "plana admin", []string{client.ScopeManage}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	oldPlain, old, err := srv.MintKey(ctx, admin.ID, "Nightly stock sync (2025)", []string{"stock:read", "stock:write"}, srv.Now().Add(-400*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w := &World{T: t, Srv: srv, URL: url, Store: secret.NewMemory(), StateDir: filepath.Join(dir, "state"),
		EnvPath: filepath.Join(dir, "app.env"), Old: old, OldPlain: oldPlain, Mgmt: mgmt}
	w.API = w.ClientFor("plana-test", mgmt)
	if err := w.Store.Set(secret.KeyName(old.ID), oldPlain); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.EnvPath, []byte("# stock sync\nAPI_URL="+url+"\nPLANA_KEY="+oldPlain+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// ClientFor is a client presenting keys in order of preference, with ua.
func (w *World) ClientFor(ua string, keys ...string) *client.Client {
	c, err := client.New(w.URL, client.WithKeys(keys...), client.WithUserAgent(ua),
		client.WithRetry(3, 5*time.Second), client.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		w.T.Fatal(err)
	}
	return c
}

// Call makes one automation call with keys in order of preference.
func (w *World) Call(ua string, keys ...string) error {
	_, err := w.ClientFor(ua, keys...).Do(context.Background(), client.Request{Method: http.MethodGet, Path: "/v1/stock-levels"}, nil)
	return err
}

// MustCall is Call with one key, failing the test when it fails.
func (w *World) MustCall(ua string, plain string) {
	w.T.Helper()
	if err := w.Call(ua, plain); err != nil {
		w.T.Fatal(err)
	}
}

// Keys lists the workspace's keys with status.
func (w *World) Keys(status string) []client.APIKey {
	ks, err := w.API.ListKeys(context.Background(), client.ListKeysOptions{Status: status})
	if err != nil {
		w.T.Fatal(err)
	}
	return ks
}

// Key reads key id.
func (w *World) Key(id string) client.APIKey {
	k, err := w.API.GetKey(context.Background(), id)
	if err != nil {
		w.T.Fatal(err)
	}
	return *k
}

// Minted is a key made for a test, and its plaintext.
type Minted struct {
	Key   client.APIKey
	Plain string
}

// Mint makes n keys of the old key's issuer: "fleet 0", "fleet 1"…
func (w *World) Mint(t *testing.T, n int) []Minted {
	var out []Minted
	for i := range n {
		plain, k, err := w.Srv.MintKey(context.Background(), w.Old.CreatedBy.ID, fmt.Sprintf("fleet %d", i), []string{"stock:read"}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Minted{k, plain})
	}
	return out
}

// APIThrough is a management client whose every request to the world's
// emulator see is shown first (and may hold).
func (w *World) APIThrough(t *testing.T, see func(*http.Request)) *client.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		see(r)
		w.Srv.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(ts.Close)
	api, err := client.New(ts.URL, client.WithKeys(w.Mgmt))
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// Counting is a management client whose requests are counted.
func (w *World) Counting(t *testing.T) (*client.Client, *atomic.Int64) {
	var n atomic.Int64
	return w.APIThrough(t, func(*http.Request) { n.Add(1) }), &n
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// KeyShape matches a full plaintext key.
var KeyShape = regexp.MustCompile(`pa_(live|test)_[0-9A-Za-z]{46}`)

// Recorder is a Reporter that keeps what it was told and can act on waits.
// A package whose reporter must follow the gate adds GateChecked calling
// Checked.
type Recorder struct {
	mu     sync.Mutex
	lines  []string
	checks int
	// OnWait, when set, runs on every evaluation of the gate while step 3
	// waits (Checked), whether or not it is worth a line.
	OnWait func()
	// OnWaiting hears every waiting line, for waits that are not the
	// gate's (the watch after the revoke).
	OnWaiting func(string)
}

func (r *Recorder) add(s string) {
	r.mu.Lock()
	r.lines = append(r.lines, s)
	r.mu.Unlock()
}

func (r *Recorder) Step(s string) { r.add("step: " + s) }
func (r *Recorder) Waiting(s string) {
	r.add("waiting: " + s)
	if r.OnWaiting != nil {
		r.OnWaiting(s)
	}
}
func (r *Recorder) Info(s string) { r.add("info: " + s) }
func (r *Recorder) Warn(s string) { r.add("warn: " + s) }

// Checked counts an evaluation of the gate and runs OnWait.
func (r *Recorder) Checked() {
	r.mu.Lock()
	r.checks++
	r.mu.Unlock()
	if r.OnWait != nil {
		r.OnWait()
	}
}

// Checks is how many evaluations of the gate were counted.
func (r *Recorder) Checks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checks
}

// Text is every line so far, one a line.
func (r *Recorder) Text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// Reset forgets the lines so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.lines = nil
	r.mu.Unlock()
}
