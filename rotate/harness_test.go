package rotate

import (
	"context"
	"errors"
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

// world is a real emulator, a memory keyring and a state directory.
type world struct {
	t        *testing.T
	srv      *emulator.Server
	url      string
	api      *client.Client
	store    *secret.Memory
	stateDir string
	envPath  string
	old      client.APIKey
	oldPlain string
	mgmt     string // the management key's plaintext
	rep      *recorder
}

func newWorld(t *testing.T) *world { t.Helper(); return newWorldConfig(t, emulator.Config{}) }

// newWorldConfig is newWorld with an emulator configured by cfg (its
// database, bcrypt cost and dev endpoints are the world's own).
func newWorldConfig(t *testing.T, cfg emulator.Config) *world {
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
	w := &world{t: t, srv: srv, url: url, store: secret.NewMemory(), stateDir: filepath.Join(dir, "state"),
		envPath: filepath.Join(dir, "app.env"), old: old, oldPlain: oldPlain, rep: &recorder{}}
	w.mgmt = mgmt
	w.api = w.clientFor("plana-test", mgmt)
	if err := w.store.Set(secret.KeyName(old.ID), oldPlain); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.envPath, []byte("# stock sync\nAPI_URL="+url+"\nPLANA_KEY="+oldPlain+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) clientFor(ua string, keys ...string) *client.Client {
	c, err := client.New(w.url, client.WithKeys(keys...), client.WithUserAgent(ua),
		client.WithRetry(3, 5*time.Second), client.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) rotator() *Rotator {
	return &Rotator{
		API: w.api,
		ClientFor: func(keys ...string) (*client.Client, error) {
			return w.clientFor("plana-test", keys...), nil
		},
		Secrets: w.store, StateDir: w.stateDir, Reporter: w.rep, LocalActor: "tester@box",
		// One machine per world: no other create can be in flight.
		SettleDelay: time.Millisecond,
	}
}

// call makes one automation call with keys in order of preference.
func (w *world) call(ua string, keys ...string) error {
	_, err := w.clientFor(ua, keys...).Do(context.Background(), client.Request{Method: http.MethodGet, Path: "/v1/stock-levels"}, nil)
	return err
}

// automation runs the seed's fallback pattern against the env file until
// stopped: PLANA_KEY_NEW first, PLANA_KEY as fallback. It returns how many
// calls failed.
func (w *world) automation(t *testing.T) (stop func() (calls, failed int64)) {
	var n, bad atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			data, err := os.ReadFile(w.envPath)
			if err != nil {
				bad.Add(1)
				continue
			}
			var keys []string
			for _, name := range []string{EnvKeyNew, EnvKey} {
				if v, ok := LookupEnv(data, name); ok {
					keys = append(keys, v)
				}
			}
			n.Add(1)
			if err := w.call("stock-sync/1.4", keys...); err != nil {
				bad.Add(1)
			}
			time.Sleep(2 * time.Millisecond) // the automation's own pace, not a wait for state
		}
	}()
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return n.Load(), bad.Load()
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *world) keys(status string) []client.APIKey {
	ks, err := w.api.ListKeys(context.Background(), client.ListKeysOptions{Status: status})
	if err != nil {
		w.t.Fatal(err)
	}
	return ks
}

// successors are the keys named like a successor of the old key.
func (w *world) successors(status string) []client.APIKey {
	var out []client.APIKey
	for _, k := range w.keys(status) {
		if k.ID != w.old.ID && isSuccessorName(w.old.Name, k.Name) {
			out = append(out, k)
		}
	}
	return out
}

func (w *world) key(id string) client.APIKey {
	k, err := w.api.GetKey(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return *k
}

// assertNoPlaintext greps every file of the state directory for key material.
func (w *world) assertNoPlaintext() {
	w.t.Helper()
	filepath.Walk(w.stateDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if loc := keyShape.FindIndex(data); loc != nil {
			w.t.Errorf("%s holds something shaped like a plaintext key at byte %d", p, loc[0])
		}
		return nil
	})
}

// recorder is a Reporter (and GateWatcher) that keeps what it was told and
// can act on waits.
type recorder struct {
	mu     sync.Mutex
	lines  []string
	checks int // gate evaluations while waiting
	onWait func()
	// onWaiting hears every waiting line, for waits that are not the gate's
	// (the watch after the revoke).
	onWaiting func(string)
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.lines = append(r.lines, s)
	r.mu.Unlock()
}
func (r *recorder) Step(s string) { r.add("step: " + s) }
func (r *recorder) Waiting(s string) {
	r.add("waiting: " + s)
	if r.onWaiting != nil {
		r.onWaiting(s)
	}
}

// GateChecked runs onWait on every evaluation of the gate while step 3
// waits, whether or not it is worth a line.
func (r *recorder) GateChecked(GateReport) {
	r.mu.Lock()
	r.checks++
	r.mu.Unlock()
	if r.onWait != nil {
		r.onWait()
	}
}
func (r *recorder) Info(s string) { r.add("info: " + s) }
func (r *recorder) Warn(s string) { r.add("warn: " + s) }
func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// keyShape matches a full plaintext key.
var keyShape = regexp.MustCompile(`pa_(live|test)_[0-9A-Za-z]{46}`)

// atGate starts the automation and a rotation, and returns once the first
// run (steps 1 and 2) stopped at the gate and the automation took the new
// key; opts are that run's, stop ends the automation.
func (w *world) atGate(t *testing.T) (res *Result, opts Options, stop func() (calls, failed int64)) {
	t.Helper()
	stop = w.automation(t)
	eventually(t, "the automation to use the old key", func() bool { return w.key(w.old.ID).LastUsedAt != nil })
	opts = fastOpts(w)
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.old, opts)
	if !errors.Is(err, ErrPending) || res.New == nil {
		stop()
		t.Fatalf("first run: want pending at the gate, got %v", err)
	}
	eventually(t, "the automation to move to the new key", func() bool { return w.key(res.New.ID).LastUsedAt != nil })
	return res, opts, stop
}

// apiThrough is a management client whose every request to the world's
// emulator see is shown first (and may hold).
func (w *world) apiThrough(t *testing.T, see func(*http.Request)) *client.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		see(r)
		w.srv.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(ts.Close)
	api, err := client.New(ts.URL, client.WithKeys(w.mgmt))
	if err != nil {
		t.Fatal(err)
	}
	return api
}
