// Command automation is a small "Nightly stock sync" worker, written the way
// a user of the BOS API would write one, to show (and test) zero-downtime key
// rotation from the automation's side.
//
// Every --interval it re-reads its env file (as a redeploy would pick up new
// secrets), or runs --key-cmd and reads the keys from its output (as an
// automation reading a secrets manager on every call would), presents
// PLANA_KEY_NEW first and PLANA_KEY as the fallback, calls
// GET /v1/stock-levels, and records how many calls it made and how many
// failed in a JSON stats file. --workers N runs N such loops at once, as a
// fleet of instances sharing one deployment would, counted together. It
// never prints a plaintext key: only the non-secret prefix of the key that
// answered.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
	"github.com/plana-cli/plana/client"
	"github.com/subosito/gotenv"
)

// The env variables, in the order the keys are tried: the seed's pattern of
// "new key first, old key as the fallback".
const (
	envNewKey = "PLANA_KEY_NEW"
	envKey    = "PLANA_KEY"
	envAPIURL = "PLANA_API_URL"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// A call must finish well within a tick or two; the client's default of a
// minute of retries suits a CLI, not a worker that will try again shortly.
const (
	callTimeout    = 10 * time.Second
	requestTimeout = 5 * time.Second
	maxTries       = 3
	maxRetryTime   = 5 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

type options struct {
	envFile   string
	keyCmd    string
	apiURL    string
	userAgent string
	path      string
	// forwardedFor, when set, is sent as X-Forwarded-For: a bos-emulator
	// run with --trust-forwarded-for logs it as the caller's address.
	forwardedFor string
	statsFile    string
	interval     time.Duration
	workers      int
	once         bool
}

// Stats is what the stats file holds, rewritten atomically as calls finish.
type Stats struct {
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
	// Refused counts the failures where the server refused every key (401):
	// the ones a rotation can cause, as opposed to a flaky server's.
	Refused    int64  `json:"refused"`
	LastPrefix string `json:"last_prefix"` // prefix of the key that answered the latest successful call
	LastError  string `json:"last_error"`  // the latest failure, kept after a recovery
}

// statsEvery is how often a changed stats file is rewritten: often enough
// for a test polling it, rarely enough that fifty workers do not spend
// their time on fsync.
const statsEvery = 50 * time.Millisecond

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("automation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.envFile, "env-file", "", "env file holding "+envKey+" and optionally "+envNewKey+" (re-read before every call)")
	fs.StringVar(&o.keyCmd, "key-cmd", "", "instead of --env-file, a command (run by sh before every call) that prints "+envKey+"=… and optionally "+envNewKey+"=… lines, read from a secrets manager")
	fs.StringVar(&o.apiURL, "api-url", getenv(envAPIURL), "BOS API base URL (default $"+envAPIURL+")")
	fs.StringVar(&o.userAgent, "user-agent", "stock-sync/1.4", "User-Agent sent with every call (the execution log shows it)")
	fs.StringVar(&o.path, "path", "/v1/stock-levels", "the path every call asks for, URL-escaped (the execution log shows it)")
	fs.StringVar(&o.forwardedFor, "forwarded-for", "", "send X-Forwarded-For: IP, so that a bos-emulator run with --trust-forwarded-for logs the calls as coming from IP (another network)")
	fs.StringVar(&o.statsFile, "stats-file", "", "write call counts as JSON to this file after every call")
	fs.DurationVar(&o.interval, "interval", time.Second, "time between calls")
	fs.IntVar(&o.workers, "workers", 1, "how many workers call at once, each every --interval")
	fs.BoolVar(&o.once, "once", false, "make one call and exit: 0 if it succeeded, 1 if not")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: automation --env-file FILE | --key-cmd CMD [--api-url URL] [--interval D] [--stats-file FILE] [--user-agent UA] [--path PATH] [--forwarded-for IP] [--workers N] [--once]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q: all options are flags", fs.Arg(0))
	case o.envFile == "" && o.keyCmd == "":
		return o, errors.New("--env-file or --key-cmd is required: the file the deploy writes " + envKey + " into, or a command that reads it from a secrets manager")
	case o.envFile != "" && o.keyCmd != "":
		return o, errors.New("--env-file and --key-cmd both give the keys: pass one")
	case o.apiURL == "":
		return o, errors.New("no API URL: pass --api-url or set " + envAPIURL)
	case o.interval <= 0:
		return o, fmt.Errorf("--interval must be positive, got %s", o.interval)
	case o.workers < 1 || o.workers > 1000:
		return o, fmt.Errorf("--workers must be from 1 to 1000, got %d", o.workers)
	}
	if o.forwardedFor != "" {
		if _, err := netip.ParseAddr(o.forwardedFor); err != nil {
			return o, fmt.Errorf("--forwarded-for %q is not an IP address", o.forwardedFor)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	opts, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "automation: %v\n", err)
		return exitUsage
	}
	if _, err := client.New(opts.apiURL); err != nil {
		fmt.Fprintf(stderr, "automation: %v\n", err)
		return exitUsage
	}
	logger := log.New(stderr, "stock-sync: ", log.LstdFlags)
	t := &tally{file: opts.statsFile}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.workers
	// One transport for the whole run keeps connections alive across
	// ticks even though the client is rebuilt for every call.
	hc := &http.Client{Transport: answeredBy{next: tr, forwardedFor: opts.forwardedFor}}
	if opts.once {
		ok := newWorker(opts, logger, "", hc, t).tick(ctx)
		if err := t.write(); err != nil {
			logger.Print(err)
			return exitError
		}
		if !ok {
			return exitError
		}
		return exitOK
	}

	logger.Printf("calling %s/v1/stock-levels every %s with %d worker(s), keys from %s", strings.TrimRight(opts.apiURL, "/"), opts.interval, opts.workers, opts.keySource())
	var wg sync.WaitGroup
	for i := range opts.workers {
		name := ""
		if opts.workers > 1 {
			name = fmt.Sprintf("worker %d: ", i+1)
		}
		w := newWorker(opts, logger, name, hc, t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	ticker := time.NewTicker(statsEvery)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			s := t.snapshot()
			logger.Printf("stopping after %d calls, %d failed", s.Calls, s.Failures)
			if err := t.write(); err != nil {
				logger.Print(err)
				return exitError
			}
			return exitOK
		case <-ticker.C:
			if err := t.write(); err != nil {
				// Tests and the demo read the counts from this file: a worker
				// that cannot write it would look healthy while proving nothing.
				logger.Print(err)
				return exitError
			}
		}
	}
}

// tally is the stats of every worker, and the file they go to.
type tally struct {
	file    string
	mu      sync.Mutex
	s       Stats
	written int64 // s.Calls when last written
	wmu     sync.Mutex
}

func (t *tally) snapshot() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.s
}

// write rewrites the stats file when a call finished since the last write.
func (t *tally) write() error {
	if t.file == "" {
		return nil
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	s := t.snapshot()
	if s.Calls == t.written && s.Calls != 0 {
		return nil
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(t.file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing stats: %w", err)
	}
	t.written = s.Calls
	return nil
}

type worker struct {
	opts  options
	log   *log.Logger
	name  string // "worker N: " when there are several
	http  *http.Client
	tally *tally

	// What the last log lines said, so that only changes are logged.
	keysSeen   string
	failing    bool
	failedRun  int64
	lastLogged string
	lastPrefix string
}

func newWorker(opts options, logger *log.Logger, name string, hc *http.Client, t *tally) *worker {
	return &worker{opts: opts, log: logger, name: name, http: hc, tally: t}
}

func (w *worker) logf(format string, a ...any) { w.log.Printf(w.name+format, a...) }

// loop calls every interval until ctx ends.
func (w *worker) loop(ctx context.Context) {
	ticker := time.NewTicker(w.opts.interval)
	defer ticker.Stop()
	for {
		w.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// tick makes one call and updates the stats, logging only what changed.
// It reports whether the call succeeded.
func (w *worker) tick(ctx context.Context) bool {
	// A signal arriving mid-call must not turn that call into a failure:
	// the call finishes on its own deadline, then the loop stops.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()

	prefix, err := w.call(callCtx)
	t := w.tally
	t.mu.Lock()
	t.s.Calls++
	n := t.s.Calls
	if err != nil {
		msg := client.Redact(err.Error())
		t.s.Failures++
		if errors.Is(err, client.ErrUnauthenticated) {
			t.s.Refused++
		}
		t.s.LastError = msg
		t.mu.Unlock()
		w.failedRun++
		if !w.failing || msg != w.lastLogged {
			w.logf("call %d failed: %s", n, msg)
		}
		w.failing, w.lastLogged = true, msg
		return false
	}
	t.s.LastPrefix = prefix
	t.mu.Unlock()
	if w.failing {
		w.logf("call %d succeeded again after %d failed calls", n, w.failedRun)
	}
	if prefix != w.lastPrefix {
		w.logf("call %d answered with key %s", n, prefix)
	}
	w.lastPrefix = prefix
	w.failing, w.failedRun, w.lastLogged = false, 0, ""
	return true
}

// call reads the env file afresh, builds a client with the keys in it and
// fetches the stock levels. It returns the prefix of the key that answered.
func (w *worker) call(ctx context.Context) (string, error) {
	keys, err := w.readKeys(ctx)
	if err != nil {
		return "", err
	}
	c, err := client.New(w.opts.apiURL,
		client.WithKeys(keys...),
		client.WithUserAgent(w.opts.userAgent),
		client.WithHTTPClient(w.http),
		client.WithRequestTimeout(requestTimeout),
		client.WithRetry(maxTries, maxRetryTime))
	if err != nil {
		return "", err
	}
	var answered string
	var levels json.RawMessage
	_, err = c.Do(context.WithValue(ctx, answeredKey{}, &answered),
		client.Request{Method: http.MethodGet, Path: w.opts.path}, &levels)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", w.opts.path, err)
	}
	return answered, nil
}

// keySource names where the keys come from, in log lines and errors.
func (o options) keySource() string {
	if o.keyCmd != "" {
		return "--key-cmd"
	}
	return o.envFile
}

// readKeys returns the keys of the env file (or of --key-cmd's output) in
// the order to try them, and logs when the set of keys changes (by prefix
// only).
func (w *worker) readKeys(ctx context.Context) ([]string, error) {
	env, err := w.readEnv(ctx)
	if err != nil {
		return nil, err
	}
	var keys, described []string
	for _, name := range []string{envNewKey, envKey} {
		v := env[name]
		if v == "" {
			continue
		}
		k, err := client.ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", name, w.opts.keySource(), err)
		}
		keys = append(keys, v)
		described = append(described, name+"="+k.Prefix+"…")
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s has neither %s nor %s", w.opts.keySource(), envKey, envNewKey)
	}
	if d := strings.Join(described, " "); d != w.keysSeen {
		if w.opts.keyCmd != "" {
			w.logf("--key-cmd gave %s", d)
		} else {
			w.logf("env file has %s", d)
		}
		w.keysSeen = d
	}
	return keys, nil
}

type answeredKey struct{}

// answeredBy notes the prefix of the key whose request got a 2xx answer.
// The client falls back from PLANA_KEY_NEW to PLANA_KEY on its own; this is
// how the worker learns which one the server accepted, to log the switch.
//
// It also plays a caller from another network: with forwardedFor set, each
// request says it was forwarded for that address.
type answeredBy struct {
	next         http.RoundTripper
	forwardedFor string
}

func (t answeredBy) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.forwardedFor != "" {
		req = req.Clone(req.Context())
		req.Header.Set("X-Forwarded-For", t.forwardedFor)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if slot, ok := req.Context().Value(answeredKey{}).(*string); ok && resp.StatusCode/100 == 2 {
		*slot = client.PrefixOf(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
	}
	return resp, nil
}

// maxKeyCmdOutput bounds what --key-cmd may print.
const maxKeyCmdOutput = 64 << 10

// readEnv reads the env file, or runs --key-cmd and parses what it
// printed the same way. A failing command's stderr goes into the error,
// with anything shaped like a key redacted.
func (w *worker) readEnv(ctx context.Context) (gotenv.Env, error) {
	if w.opts.keyCmd == "" {
		env, err := gotenv.Read(w.opts.envFile)
		if err != nil {
			return nil, fmt.Errorf("reading env file: %w", err)
		}
		return env, nil
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", w.opts.keyCmd)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitWriter{w: &out, n: maxKeyCmdOutput}, &limitWriter{w: &errOut, n: 4096}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("--key-cmd: %v: %s", err, client.Redact(strings.TrimSpace(errOut.String())))
	}
	env, err := gotenv.StrictParse(&out)
	if err != nil {
		// The parser's message quotes the line, which may hold a key.
		return nil, errors.New("--key-cmd printed something other than NAME=VALUE lines")
	}
	return env, nil
}

// limitWriter passes on the first n bytes written to it and drops the rest.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	keep := min(len(p), l.n)
	if keep > 0 {
		if _, err := l.w.Write(p[:keep]); err != nil {
			return 0, err
		}
		l.n -= keep
	}
	return len(p), nil
}
