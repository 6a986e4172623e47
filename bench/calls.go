package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
)

// call is one request plana made, as the counting proxy saw it.
type call struct {
	step     string // the rotation step running when it was made
	endpoint string // method and route, ids replaced: GET /v1/api-keys/{id}
	key      string // whose key it presented: management, old, new
	logKey   string // for the execution log: whose entries it asked for
	since    string
	entries  int  // entries in an execution-log answer
	nextPage bool // a read's next page, not a read of its own
}

// countingProxy forwards to the emulator and records every call, so the
// count is of what crossed the wire, retries included.
type countingProxy struct {
	mu     sync.Mutex
	calls  []call
	step   string
	keys   map[string]string // plaintext → whose: management, old
	keyIDs map[string]string // key id → whose
	srv    *httptest.Server
}

func newCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &countingProxy{keys: map[string]string{}, keyIDs: map[string]string{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		rp.ServeHTTP(rec, r)
		p.record(r, rec)
	}))
	return p, nil
}

type recorder struct {
	http.ResponseWriter
	body []byte
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body = append(r.body, b...)
	return r.ResponseWriter.Write(b)
}

func (p *countingProxy) setStep(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.step = s
}

func (p *countingProxy) record(r *http.Request, rec *recorder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := call{step: p.step, endpoint: r.Method + " " + route(r.URL.Path)}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	c.key = p.keys[tok]
	if c.key == "" {
		c.key = "new"
	}
	if r.URL.Path == "/v1/execution-log" {
		q := r.URL.Query()
		c.logKey = p.keyIDs[q.Get("key_id")]
		switch {
		case q.Get("key_id") == "":
			c.logKey = "every" // one read serving every rotation under way
		case c.logKey == "":
			c.logKey = "new"
		}
		c.since = q.Get("since")
		c.nextPage = q.Get("page_token") != ""
		var page struct {
			Entries []json.RawMessage `json:"entries"`
		}
		json.Unmarshal(rec.body, &page)
		c.entries = len(page.Entries)
	}
	p.calls = append(p.calls, c)
}

func route(p string) string {
	if rest, ok := strings.CutPrefix(p, "/v1/api-keys/"); ok {
		if _, action, ok := strings.Cut(rest, "/"); ok {
			return "/v1/api-keys/{id}/" + action
		}
		return "/v1/api-keys/{id}"
	}
	return p
}

// stepReporter tells the proxy which step is running.
type stepReporter struct{ p *countingProxy }

func (s stepReporter) Step(msg string) {
	step := msg
	if i := strings.Index(msg, ":"); i > 0 {
		step = msg[:i]
	}
	s.p.setStep(step)
}
func (stepReporter) Waiting(string) {}
func (stepReporter) Info(string)    {}
func (stepReporter) Warn(string)    {}

// calls runs one whole rotation, the way `plana keys rotate KEY --to
// env-file:... --yes` does, with the demo automation calling every 200ms,
// and counts plana's requests by step and endpoint.
func (b *bench) calls(ctx context.Context) error {
	const sec = "calls"
	emu, err := b.startEmulator("calls", filepath.Join(b.dir, "calls.db"), true)
	if err != nil {
		return err
	}
	defer emu.stop()
	admin, auto, err := b.seededKeys("calls")
	if err != nil {
		return err
	}
	envFile := filepath.Join(b.dir, "calls.env")
	auto1 := exec.Command(b.bin["automation"], "--env-file", envFile, "--api-url", emu.url, "--interval", "200ms",
		"--stats-file", filepath.Join(b.dir, "automation.stats.json"))
	alog, err := os.Create(filepath.Join(b.dir, "automation.log"))
	if err != nil {
		return err
	}
	defer alog.Close()
	auto1.Stderr = alog
	if err := auto1.Start(); err != nil {
		return err
	}
	defer func() { auto1.Process.Kill(); auto1.Wait() }()

	direct, err := client.New(emu.url, client.WithKeys(admin))
	if err != nil {
		return err
	}
	var old client.APIKey
	keys, err := direct.ListKeys(ctx, client.ListKeysOptions{})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Name == "Nightly stock sync (2025)" {
			old = k
		}
	}
	if old.ID == "" {
		return fmt.Errorf("the demo seed has no nightly key")
	}
	proxy, err := newCountingProxy(emu.url)
	if err != nil {
		return err
	}
	defer proxy.srv.Close()
	proxy.keys[admin] = "management"
	proxy.keys[auto] = "old"
	proxy.keyIDs[old.ID] = "old"

	api, err := client.New(proxy.srv.URL, client.WithKeys(admin), client.WithUserAgent("plana/bench"))
	if err != nil {
		return err
	}
	r := &rotate.Rotator{
		API: api,
		ClientFor: func(keys ...string) (*client.Client, error) {
			return client.New(proxy.srv.URL, client.WithKeys(keys...), client.WithUserAgent("plana/bench"))
		},
		Secrets:    secret.NewMemory(),
		StateDir:   filepath.Join(b.dir, "calls-state"),
		Reporter:   stepReporter{proxy},
		LocalActor: "bench@localhost",
	}
	const quiet, poll = 2 * time.Second, 200 * time.Millisecond
	start := time.Now()
	res, err := r.Rotate(ctx, old, rotate.Options{
		Targets: []string{"env-file:" + envFile}, QuietPeriod: quiet, PollInterval: poll, Timeout: 2 * time.Minute, Yes: true,
	})
	if err != nil {
		return fmt.Errorf("rotation: %w", err)
	}
	took := time.Since(start)
	if !res.Done {
		return fmt.Errorf("rotation stopped at step %v", res.State)
	}

	proxy.mu.Lock()
	calls := slices.Clone(proxy.calls)
	proxy.mu.Unlock()
	type row struct{ step, endpoint, key string }
	counts := map[row]int{}
	var order []row
	var polls, pollCalls, logReads, logEntries, sinceBack int
	lastSince := map[string]string{}
	for _, c := range calls {
		k := c.key
		if c.logKey != "" {
			k += ", entries of the " + c.logKey + " key"
		}
		rw := row{c.step, c.endpoint, k}
		if counts[rw] == 0 {
			order = append(order, rw)
		}
		counts[rw]++
		if strings.HasPrefix(c.step, "Step 3") {
			pollCalls++
			if c.endpoint == "GET /v1/api-keys/{id}" {
				polls++
			}
			if c.endpoint == "GET /v1/execution-log" {
				logReads++
				logEntries += c.entries
				if prev := lastSince[c.logKey]; prev != "" && c.since < prev {
					sinceBack++
				}
				lastSince[c.logKey] = c.since
			}
		}
	}
	var lines []string
	for _, rw := range order {
		lines = append(lines, fmt.Sprintf("| %s | %s | %s | %d |", rw.step, rw.endpoint, rw.key, counts[rw]))
	}
	per := 0.0
	if polls > 0 {
		per = float64(pollCalls) / float64(polls)
	}
	b.rep.info(sec, "API requests for one whole rotation", fmt.Sprintf("%d (%d gate polls)", len(calls), polls))
	b.rep.goal(sec, "requests per gate poll", fmt.Sprintf("%.2f", per), "≤ 3: the key, and the log of each key from the last entry seen", per <= 3,
		"The gate re-reads more than the old key, its log since the last entry seen, and the new key's log until first use.")
	b.rep.goal(sec, "log reads whose since went backwards", fmt.Sprintf("%d of %d", sinceBack, logReads), "0", sinceBack == 0,
		"The gate re-read the execution log from earlier than the last entry it had seen.")
	if logReads > 0 {
		b.rep.info(sec, "entries per gate log read", fmt.Sprintf("%.1f (%d reads)", float64(logEntries)/float64(logReads), logReads))
	}
	b.rep.block(sec, fmt.Sprintf(`One whole rotation (rotate.Rotator, as `+"`plana keys rotate 'Nightly stock sync (2025)' --to env-file:... --quiet-period 2s --poll-interval 200ms --yes`"+`)
of the demo automation's key while examples/automation calls every 200ms. A counting proxy between
plana and the emulator records every request plana made (the automation's own calls do not go through
it). It took %s and %d requests; step 3 polled the gate %d times at %.2f requests a poll.

| step | endpoint | key presented | requests |
|---|---|---|---|
%s`, took.Round(time.Millisecond), len(calls), polls, per, strings.Join(lines, "\n")))
	return nil
}
