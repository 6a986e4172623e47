// Package emulator is bos-emulator: a local implementation of the BOS API keys
// contract (v1) backed by SQLite, with a movable clock, fault injection and a
// demo seed, for plana's development and tests.
package emulator

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/textsafe"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/singleflight"
)

// Config configures a Server. The zero value is usable apart from DBPath.
type Config struct {
	// DBPath is the SQLite file, created if missing; ":memory:" keeps
	// everything in memory for the life of the Server.
	DBPath string
	// BcryptCost hashes new keys; 0 means 12.
	BcryptCost int
	// LastUsedGranularity, when positive, records last_used_at truncated to
	// it and only when the truncated value changes. The log stays exact.
	LastUsedGranularity time.Duration
	// DevEndpoints enables /_emulator/clock, /_emulator/stats, and the test
	// hooks /_emulator/faults (faults injected) and /_emulator/holds.
	DevEndpoints bool
	// Faults injects failures into /v1/ requests.
	Faults FaultConfig
	// TrustForwardedFor takes each call's source_ip from X-Forwarded-For,
	// as a server behind a proxy does, so tests and demos can play callers
	// from other networks. Only for a server on loopback: anyone else could
	// write any address into the log.
	TrustForwardedFor bool
	// Logger receives one line per request; nil disables the request log.
	Logger io.Writer
}

// DefaultBcryptCost is the cost used when Config.BcryptCost is 0.
const DefaultBcryptCost = 12

const clockMetaName = "clock_offset_ns"

// Server is a running emulator: its database, clock and log writer.
type Server struct {
	cfg    Config
	db     *sql.DB
	ws     client.Workspace
	offset atomic.Int64 // emulator clock minus real time, in nanoseconds
	faults *faultInjector
	writer *logWriter

	cache    verifiedCache
	flight   singleflight.Group
	failures failLimiter // wrong secrets per public id, to bound forgeries' bcrypt work
	// bcryptSlots bounds the bcrypt comparisons running at once.
	bcryptSlots chan struct{}
	// bcryptCalls counts hash comparisons so tests can prove the cache and
	// singleflight spare bcrypt work.
	bcryptCalls atomic.Int64

	inflightMu sync.Mutex
	inflight   map[string]struct{} // idempotency slots being created right now

	holds holds // requests to stop part-way for tests, armed via /_emulator/holds

	lock *flock.Flock // the database's lock file; nil for ":memory:"

	logMu     sync.Mutex
	closeOnce sync.Once
	closeErr  error
}

// New opens (creating if needed) the database and starts the log writer.
func New(cfg Config) (*Server, error) {
	if cfg.DBPath == "" {
		return nil, errors.New("emulator: Config.DBPath is empty (use \":memory:\" for no file)")
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = DefaultBcryptCost
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("emulator: bcrypt cost %d outside %d..%d", cfg.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if cfg.LastUsedGranularity < 0 {
		return nil, errors.New("emulator: negative last-used granularity")
	}
	var lock *flock.Flock
	if cfg.DBPath != ":memory:" {
		var err error
		if lock, err = lockDB(cfg.DBPath); err != nil {
			return nil, fmt.Errorf("emulator: %w", err)
		}
	}
	db, err := openDB(cfg.DBPath)
	if err != nil {
		unlock(lock)
		return nil, fmt.Errorf("emulator: %w", err)
	}
	s, err := start(cfg, db)
	if err != nil {
		db.Close()
		unlock(lock)
		return nil, fmt.Errorf("emulator: %w", err)
	}
	s.lock = lock
	return s, nil
}

func unlock(l *flock.Flock) {
	if l != nil {
		l.Close()
	}
}

// start reads the stored state of db and starts the log writer.
func start(cfg Config, db *sql.DB) (*Server, error) {
	s := &Server{cfg: cfg, db: db, inflight: map[string]struct{}{},
		bcryptSlots: make(chan struct{}, runtime.GOMAXPROCS(0))}
	ctx := context.Background()
	// The clock offset survives a restart so that time never runs backwards
	// for data already stamped by an advanced clock.
	v, ok, err := loadMeta(ctx, db, clockMetaName)
	if err != nil {
		return nil, fmt.Errorf("reading clock: %w", err)
	}
	if ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("stored clock offset %q: %w", v, err)
		}
		s.offset.Store(n)
	}
	if s.ws, err = ensureWorkspace(ctx, db, s.Now()); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	s.faults = newFaultInjector(cfg.Faults)
	if s.writer, err = startLogWriter(db, cfg.LastUsedGranularity, s.cache.isRevoked); err != nil {
		return nil, fmt.Errorf("log writer: %w", err)
	}
	return s, nil
}

// Close stops the log writer after committing what it holds, saves the clock
// and closes the database. Call it after the HTTP server has shut down.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.writer.stop()
		err := s.saveClock(context.Background())
		s.closeErr = errors.Join(err, s.db.Close())
		// Only once the database is closed may another process open it.
		unlock(s.lock)
	})
	return s.closeErr
}

// Now is the emulator clock: real time plus the offset moved by Advance.
func (s *Server) Now() time.Time {
	return time.Now().Add(time.Duration(s.offset.Load())).UTC().Round(0)
}

// Advance moves the emulator clock forward (or back, for d < 0). The offset
// is saved by Close and by the clock endpoint.
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

func (s *Server) saveClock(ctx context.Context) error {
	return saveMeta(ctx, s.db, clockMetaName, strconv.FormatInt(s.offset.Load(), 10))
}

// Handler serves the BOS API, and /_emulator/ when DevEndpoints is set.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// bufferedResponse holds an answer until its execution-log entry has been
// committed, and lets "reset-after" drop an answer that was fully produced.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set("X-Request-Id", newRequestID())
	bw := &bufferedResponse{header: w.Header()}
	p := cleanPath(r.URL.Path)
	keyPrefix := "-"
	status := ""
	defer func() { s.logRequest(start, r, p, status, keyPrefix) }()

	if s.cfg.DevEndpoints && s.serveDev(bw, r, p) {
		status = s.flush(w, bw)
		return
	}
	if h, ok := s.takeHold(r, p, holdArrival); ok && !s.hold(r, p, "arrived, not handled ("+h.String()+")") {
		status = "gone"
		return
	}

	var fault string
	if strings.HasPrefix(p, "/v1/") {
		fault = s.faults.draw()
	}
	switch fault {
	case faultReset:
		status = "reset"
		dropConnection(w)
		return
	case faultSlow:
		t := time.NewTimer(s.cfg.Faults.Slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			status = "canceled"
			return
		}
	case "":
	case faultResetAfter:
	default:
		s.injectFault(bw, fault)
		status = s.flush(w, bw)
		return
	}

	c := s.route(bw, r, p)
	if c != nil {
		keyPrefix = c.key.Prefix
		if bw.status == 0 {
			bw.WriteHeader(http.StatusOK)
		}
		// A request that passed a re-check in a transaction of its own
		// wrote before any revoke of its key: it is recorded as answered.
		// Any other is re-checked where it is recorded.
		refused, err := s.writer.append(client.ExecutionLogEntry{
			ID:        newID("exe_", c.at),
			At:        c.at,
			KeyID:     c.key.ID,
			KeyPrefix: c.key.Prefix,
			Method:    r.Method,
			Path:      p,
			Status:    bw.status,
			SourceIP:  s.sourceIP(r),
			UserAgent: r.UserAgent(),
		}, !c.refused, !c.rechecked)
		switch {
		case err != nil:
			bw = s.replaceAnswer(w)
			writeError(bw, http.StatusInternalServerError, client.CodeInternal, "recording the request failed; retry")
		case refused:
			bw = s.replaceAnswer(w)
			unauthenticated(bw)
		}
	}
	if h, ok := s.takeHold(r, p, holdHandled); ok {
		if !s.hold(r, p, "handled, answer held ("+h.String()+")") {
			status = "gone-after"
			return
		}
	}
	if fault == faultResetAfter {
		status = "reset-after"
		dropConnection(w)
		return
	}
	status = s.flush(w, bw)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// replaceAnswer drops the answer a handler buffered, its headers with it,
// for another.
func (s *Server) replaceAnswer(w http.ResponseWriter) *bufferedResponse {
	h := w.Header()
	for name := range h {
		if name != "X-Request-Id" {
			h.Del(name)
		}
	}
	return &bufferedResponse{header: h}
}

func (s *Server) flush(w http.ResponseWriter, bw *bufferedResponse) string {
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	// Set explicitly so the Date header follows the emulator clock.
	w.Header().Set("Date", s.Now().Format(http.TimeFormat))
	w.Header().Set("Content-Length", strconv.Itoa(bw.body.Len()))
	w.WriteHeader(bw.status)
	w.Write(bw.body.Bytes())
	return strconv.Itoa(bw.status)
}

// dropConnection closes the client's connection without an answer. A zero
// linger makes it a TCP reset, the way a crashing proxy looks to a client.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func (s *Server) logRequest(start time.Time, r *http.Request, p, status, keyPrefix string) {
	if s.cfg.Logger == nil {
		return
	}
	// The method and path are the client's: escaped, they cannot act on the
	// terminal that shows the log or forge a line in it.
	line := fmt.Sprintf("%s %s %s %s %s %s %s\n", s.Now().Format(time.RFC3339), textsafe.Clean(r.Method), textsafe.Clean(p), status,
		time.Since(start).Round(time.Microsecond), keyPrefix, r.RemoteAddr)
	s.logMu.Lock()
	defer s.logMu.Unlock()
	io.WriteString(s.cfg.Logger, line)
}

// cleanPath resolves "." and ".." so routing and the execution log see the
// same path a client meant; the query string is never part of it.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if !strings.HasPrefix(c, "/") {
		c = "/" + c
	}
	return c
}

// sourceIP is the caller's address for the execution log: the connection's
// peer or, with TrustForwardedFor, the client-most address of
// X-Forwarded-For (the first one, which the proxy nearest the client wrote).
// A header that does not start with an address is ignored.
func (s *Server) sourceIP(r *http.Request) string {
	if s.cfg.TrustForwardedFor {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			first, _, _ := strings.Cut(xff[0], ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return a.Unmap().String()
			}
		}
	}
	return remoteIP(r.RemoteAddr)
}

func remoteIP(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
