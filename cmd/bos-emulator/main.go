// Command bos-emulator serves a local BOS API (the API keys contract, v1)
// backed by SQLite. See package emulator and docs for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/internal/atomicfile"
	"github.com/plana-cli/plana/internal/duration"
)

const shutdownTimeout = 15 * time.Second

// limits bound every phase of a request and the connections a client may
// hold, so idle or slow clients cannot starve others: 21,000 idle
// connections once took the emulator to its file-descriptor limit, and a
// thousand slow bodies each held a connection for 90 s.
type limits struct {
	conns       int           // connections open at once (see connCap)
	headerBytes int           // request line and headers; the API needs well under 1 KiB
	header      time.Duration // to send the request line and headers
	body        time.Duration // to send the body, once the headers are in
	write       time.Duration // to take the answer, from its first byte
	// handler is a backstop from the headers to the end of the answer, above
	// the longest a test hook keeps a request (a 30 s hold, a 60 s profile).
	handler time.Duration
	idle    time.Duration // between requests on a kept-alive connection
}

// defaultLimits fit the API: a body is at most 64 KiB, an answer at most a
// page of 1,000 keys; tests and the bench use at most a few hundred
// connections at once, and the cap stays well under the usual limit of
// 1,024 open files.
var defaultLimits = limits{
	conns:       512,
	headerBytes: 8 << 10,
	header:      10 * time.Second,
	body:        10 * time.Second,
	write:       10 * time.Second,
	handler:     2 * time.Minute,
	idle:        2 * time.Minute,
}

// newHTTPServer serves h on ln within lim; serve on the listener it returns.
func newHTTPServer(h http.Handler, ln net.Listener, lim limits) (*http.Server, net.Listener) {
	capped := newConnCap(ln, lim.conns)
	return &http.Server{
		Handler:           bounded(h, lim),
		ReadHeaderTimeout: lim.header,
		// No ReadTimeout: bounded gives the body a deadline of its own.
		WriteTimeout:   lim.handler,
		IdleTimeout:    lim.idle,
		MaxHeaderBytes: lim.headerBytes,
		ConnState:      capped.track,
	}, capped
}

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

const usageText = `Usage: bos-emulator [flags]

Serves the BOS API keys contract (v1) on --listen, from the SQLite file --db.

One process per database: a second bos-emulator on the same database is
refused (exit 1, naming the process that holds it), whatever path reaches it
(a symlink, a hard link), because a revoke is seen at once only by the
process that made it. The locks are SQLite's exclusive lock on the database
file and the file DB.lock beside it, released when the process ends. The
database is created at mode 0600 (its -wal file follows). --dev-endpoints and
--trust-forwarded-for are refused unless --listen is a loopback address, and
the dev endpoints answer only requests with Content-Type: application/json, a
loopback Host and no Origin header, so that no web page can move the clock or
hold a request.

Every phase of a request is bounded: 10 s for the headers (at most 8 KiB),
10 s for the body, 10 s for the client to take the answer, 2 min for idle
kept-alive connections; past --max-conns open connections, a new one takes
the place of the longest idle one, so idle clients cannot starve others.

Flags:
`

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("bos-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	var (
		listen      = fs.String("listen", "127.0.0.1:8787", "address to listen on; port 0 picks a free port")
		dbPath      = fs.String("db", "", "SQLite database file, or :memory: (default $XDG_DATA_HOME/bos-emulator/bos.db)")
		bcryptCost  = fs.Int("bcrypt-cost", emulator.DefaultBcryptCost, "bcrypt cost for new keys")
		granularity = fs.String("last-used-granularity", "0", "record last_used_at truncated to this duration (0 = exact), e.g. 1h or 1d")
		dev         = fs.Bool("dev-endpoints", false, "enable /_emulator/clock (read and advance the emulator clock), /_emulator/stats (bcrypt and log counters), /_emulator/faults (faults injected by kind) and /_emulator/holds (hold a request part-way, for kill tests); only with a loopback --listen")
		faults      = fs.String("faults", "", "inject faults into /v1/ requests, e.g. 'rate=0.2,kinds=500+429+429date+429bad+reset+reset-after+slow,slow=2s'")
		faultSeed   = fs.Int64("fault-seed", 1, "seed for the fault sequence, so runs repeat")
		seed        = fs.String("seed", "", "seed the database: 'demo' (only into a database not yet seeded)")
		tokenFile   = fs.String("token-file", "", "with --seed demo: write the admin's management key here (mode 0600)")
		memberFile  = fs.String("member-token-file", "", "with --seed demo: issue the member's management key (keys:manage stock:read) and write it here (mode 0600), to try the role rules as the member")
		envFile     = fs.String("automation-env-file", "", "with --seed demo: write PLANA_KEY=<the nightly automation's key> here (mode 0600)")
		quiet       = fs.Bool("quiet", false, "do not log a line per request")
		maxConns    = fs.Int("max-conns", defaultLimits.conns, "connections open at once; past it a new connection replaces the longest idle one")
		trustXFF    = fs.Bool("trust-forwarded-for", false, "take each call's source_ip in the execution log from X-Forwarded-For (its first address), as a server behind a proxy does, to play callers from other networks; only with a loopback --listen")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "bos-emulator: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	if *seed != "" && *seed != "demo" {
		return usage("--seed %q: the only seed is 'demo'", *seed)
	}
	if *seed == "" && (*tokenFile != "" || *envFile != "" || *memberFile != "") {
		return usage("--token-file, --member-token-file and --automation-env-file need --seed demo")
	}
	if *maxConns < 1 {
		return usage("--max-conns %d: want at least 1", *maxConns)
	}
	lim := defaultLimits
	lim.conns = *maxConns
	if *dev && !loopback(*listen) {
		return usage("--dev-endpoints needs a loopback --listen (127.0.0.1, [::1] or localhost), not %q: they move the clock and hold requests for anyone who can reach them", *listen)
	}
	if *trustXFF && !loopback(*listen) {
		return usage("--trust-forwarded-for needs a loopback --listen (127.0.0.1, [::1] or localhost), not %q: on any other address every caller could write the source address of its choice into the execution log", *listen)
	}
	g, err := duration.Parse(*granularity)
	if err != nil || g < 0 {
		return usage("--last-used-granularity %q: want a duration such as 0, 1m, 1h or 1d", *granularity)
	}
	fc, err := emulator.ParseFaults(*faults, *faultSeed)
	if err != nil {
		return usage("--faults: %v", err)
	}
	if *dbPath == "" {
		if *dbPath, err = defaultDBPath(); err != nil {
			return usage("no --db given and no data directory: %v", err)
		}
	}

	cfg := emulator.Config{
		DBPath:              *dbPath,
		BcryptCost:          *bcryptCost,
		LastUsedGranularity: g,
		DevEndpoints:        *dev,
		Faults:              fc,
		TrustForwardedFor:   *trustXFF,
	}
	if !*quiet {
		cfg.Logger = stderr
	}
	srv, err := emulator.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "bos-emulator: %v\n", err)
		return 1
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		srv.Close()
		fmt.Fprintf(stderr, "bos-emulator: %v\n", err)
		return 1
	}

	// Seeding happens before the "listening" line so that a caller who waits
	// for that line finds the token file already written.
	var notes []string
	if *seed == "demo" {
		note, err := seedDemo(srv, seedFiles{token: *tokenFile, member: *memberFile, env: *envFile})
		if err != nil {
			ln.Close()
			srv.Close()
			fmt.Fprintf(stderr, "bos-emulator: seeding: %v\n", err)
			return 1
		}
		if note != "" {
			notes = append(notes, note)
		}
	}

	// Signals are caught before the "listening" line, which callers take as
	// the sign that the process is ready, SIGTERM included.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "bos-emulator: listening on http://%s\n", ln.Addr())
	for _, n := range notes {
		fmt.Fprintf(stderr, "bos-emulator: %s\n", n)
	}

	httpSrv, capped := newHTTPServer(srv.Handler(), ln, lim)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(capped) }()

	code := 0
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		fmt.Fprintf(stderr, "bos-emulator: %v\n", err)
		code = 1
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(stderr, "bos-emulator: shutdown: %v\n", err)
		code = 1
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "bos-emulator: closing the database: %v\n", err)
		code = 1
	}
	return code
}

// loopback reports whether addr (host:port) listens on loopback only. An
// empty host is every interface; other host names are not trusted to stay
// loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func defaultDBPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "bos-emulator", "bos.db"), nil
}

// seedFiles are where the demo's plaintexts go; "" writes none.
type seedFiles struct{ token, member, env string }

// seedDemo seeds and writes the plaintexts to their files; it returns a note
// for stderr when the database was already seeded.
func seedDemo(srv *emulator.Server, files seedFiles) (string, error) {
	ctx := context.Background()
	res, err := srv.SeedDemo(ctx)
	if errors.Is(err, emulator.ErrAlreadySeeded) {
		return "database already seeded: issued no keys and left --token-file/--member-token-file/--automation-env-file as they are", nil
	}
	if err != nil {
		return "", err
	}
	if files.token != "" {
		if err := writeSecretFile(files.token, res.AdminToken+"\n"); err != nil {
			return "", err
		}
	}
	if files.member != "" {
		tok, err := srv.SeedDemoMember(ctx)
		if err != nil {
			return "", err
		}
		if err := writeSecretFile(files.member, tok+"\n"); err != nil {
			return "", err
		}
	}
	if files.env != "" {
		if err := writeSecretFile(files.env, "PLANA_KEY="+res.AutomationKey+"\n"); err != nil {
			return "", err
		}
	}
	return "", nil
}

// writeSecretFile writes through a 0600 temporary file and a rename, so the
// secret is never readable by others, not even for a moment, and a reader
// never sees half a file.
func writeSecretFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(content), 0o600)
}
