// Command automation is a small "Nightly stock sync" worker, written the way
// a user of the BOS API would write one, to show (and test) zero-downtime key
// rotation from the automation's side.
//
// Every --interval it re-reads its env file (as a redeploy would pick up new
// secrets), presents PLANA_KEY_NEW first and PLANA_KEY as the fallback, calls
// GET /v1/stock-levels, and records how many calls it made and how many
// failed in a JSON stats file. It never prints a plaintext key: only the
// non-secret prefix of the key that answered.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
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
	apiURL    string
	userAgent string
	statsFile string
	interval  time.Duration
	once      bool
}

// Stats is what the stats file holds, rewritten atomically after every call.
type Stats struct {
	Calls      int64  `json:"calls"`
	Failures   int64  `json:"failures"`
	LastPrefix string `json:"last_prefix"` // prefix of the key that answered the latest successful call
	LastError  string `json:"last_error"`  // the latest failure, kept after a recovery
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("automation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.envFile, "env-file", "", "env file holding "+envKey+" and optionally "+envNewKey+" (re-read before every call)")
	fs.StringVar(&o.apiURL, "api-url", getenv(envAPIURL), "BOS API base URL (default $"+envAPIURL+")")
	fs.StringVar(&o.userAgent, "user-agent", "stock-sync/1.4", "User-Agent sent with every call (the execution log shows it)")
	fs.StringVar(&o.statsFile, "stats-file", "", "write call counts as JSON to this file after every call")
	fs.DurationVar(&o.interval, "interval", time.Second, "time between calls")
	fs.BoolVar(&o.once, "once", false, "make one call and exit: 0 if it succeeded, 1 if not")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: automation --env-file FILE [--api-url URL] [--interval D] [--stats-file FILE] [--user-agent UA] [--once]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q: all options are flags", fs.Arg(0))
	case o.envFile == "":
		return o, errors.New("--env-file is required: the file the deploy writes " + envKey + " into")
	case o.apiURL == "":
		return o, errors.New("no API URL: pass --api-url or set " + envAPIURL)
	case o.interval <= 0:
		return o, fmt.Errorf("--interval must be positive, got %s", o.interval)
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
	w := newWorker(opts, log.New(stderr, "stock-sync: ", log.LstdFlags))
	if opts.once {
		ok := w.tick(ctx)
		if err := w.writeStats(); err != nil {
			w.log.Print(err)
			return exitError
		}
		if !ok {
			return exitError
		}
		return exitOK
	}

	w.log.Printf("calling %s/v1/stock-levels every %s, keys from %s", strings.TrimRight(opts.apiURL, "/"), opts.interval, opts.envFile)
	ticker := time.NewTicker(opts.interval)
	defer ticker.Stop()
	for {
		w.tick(ctx)
		if err := w.writeStats(); err != nil {
			// Tests and the demo read the counts from this file: a worker
			// that cannot write it would look healthy while proving nothing.
			w.log.Print(err)
			return exitError
		}
		select {
		case <-ctx.Done():
			w.log.Printf("stopping after %d calls, %d failed", w.stats.Calls, w.stats.Failures)
			return exitOK
		case <-ticker.C:
		}
	}
}

type worker struct {
	opts  options
	log   *log.Logger
	http  *http.Client
	stats Stats

	// What the last log lines said, so that only changes are logged.
	keysSeen   string
	failing    bool
	failedRun  int64
	lastLogged string
}

func newWorker(opts options, logger *log.Logger) *worker {
	return &worker{
		opts: opts,
		log:  logger,
		// One transport for the whole run keeps connections alive across
		// ticks even though the client is rebuilt for every call.
		http: &http.Client{Transport: answeredBy{next: http.DefaultTransport.(*http.Transport).Clone()}},
	}
}

// tick makes one call and updates the stats, logging only what changed.
// It reports whether the call succeeded.
func (w *worker) tick(ctx context.Context) bool {
	// A signal arriving mid-call must not turn that call into a failure:
	// the call finishes on its own deadline, then the loop stops.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()

	w.stats.Calls++
	prefix, err := w.call(callCtx)
	if err != nil {
		msg := client.Redact(err.Error())
		w.stats.Failures++
		w.stats.LastError = msg
		w.failedRun++
		if !w.failing || msg != w.lastLogged {
			w.log.Printf("call %d failed: %s", w.stats.Calls, msg)
		}
		w.failing, w.lastLogged = true, msg
		return false
	}
	if w.failing {
		w.log.Printf("call %d succeeded again after %d failed calls", w.stats.Calls, w.failedRun)
	}
	if prefix != w.stats.LastPrefix {
		w.log.Printf("call %d answered with key %s", w.stats.Calls, prefix)
	}
	w.stats.LastPrefix = prefix
	w.failing, w.failedRun, w.lastLogged = false, 0, ""
	return true
}

// call reads the env file afresh, builds a client with the keys in it and
// fetches the stock levels. It returns the prefix of the key that answered.
func (w *worker) call(ctx context.Context) (string, error) {
	keys, err := w.readKeys()
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
		client.Request{Method: http.MethodGet, Path: "/v1/stock-levels"}, &levels)
	if err != nil {
		return "", fmt.Errorf("GET /v1/stock-levels: %w", err)
	}
	return answered, nil
}

// readKeys returns the keys of the env file in the order to try them, and
// logs when the set of keys changes (by prefix only).
func (w *worker) readKeys() ([]string, error) {
	env, err := gotenv.Read(w.opts.envFile)
	if err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	var keys, described []string
	for _, name := range []string{envNewKey, envKey} {
		v := env[name]
		if v == "" {
			continue
		}
		k, err := client.ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s in %s: %w", name, w.opts.envFile, err)
		}
		keys = append(keys, v)
		described = append(described, name+"="+k.Prefix+"…")
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s has neither %s nor %s", w.opts.envFile, envKey, envNewKey)
	}
	if d := strings.Join(described, " "); d != w.keysSeen {
		w.log.Printf("env file has %s", d)
		w.keysSeen = d
	}
	return keys, nil
}

func (w *worker) writeStats() error {
	if w.opts.statsFile == "" {
		return nil
	}
	data, err := json.MarshalIndent(w.stats, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(w.opts.statsFile, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing stats: %w", err)
	}
	return nil
}

type answeredKey struct{}

// answeredBy notes the prefix of the key whose request got a 2xx answer.
// The client falls back from PLANA_KEY_NEW to PLANA_KEY on its own; this is
// how the worker learns which one the server accepted, to log the switch.
type answeredBy struct{ next http.RoundTripper }

func (t answeredBy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if slot, ok := req.Context().Value(answeredKey{}).(*string); ok && resp.StatusCode/100 == 2 {
		*slot = client.PrefixOf(strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
	}
	return resp, nil
}
