package emulator

import (
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// devRequestProblem says why r may not use the dev endpoints, or "" when it
// may. They move the clock and hold requests, so a web page must not reach
// them: a page can make a browser send a simple request (text/plain, a form,
// a GET) to a loopback address, and a DNS name rebound to 127.0.0.1 makes it
// same-origin. A JSON content type needs a CORS preflight the emulator never
// grants; a browser sends Origin with every cross-origin request but a plain
// GET; and a rebound name still shows in Host.
func devRequestProblem(r *http.Request) string {
	const rule = "dev endpoints answer only requests with Content-Type: application/json, a loopback Host and no Origin header"
	if _, ok := r.Header["Origin"]; ok {
		return rule + ": this one carries an Origin header (a web page's request)"
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return rule + ": this one is not JSON"
	}
	if !loopbackHost(r.Host) {
		return rule + ": this one is for another host"
	}
	return ""
}

// loopbackHost reports whether a Host header names this machine's loopback:
// localhost or a loopback address, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// refuseDev answers a dev request that fails devRequestProblem, and reports
// whether it did.
func refuseDev(w http.ResponseWriter, r *http.Request) bool {
	problem := devRequestProblem(r)
	if problem == "" {
		return false
	}
	writeError(w, http.StatusForbidden, client.CodeForbidden, problem)
	return true
}

// routeDev answers /_emulator/ paths that route reaches (the hooks of
// serveDev are answered before any hold or fault): each exists only with
// DevEndpoints.
func (s *Server) routeDev(w http.ResponseWriter, r *http.Request, p string) {
	if s.cfg.DevEndpoints && refuseDev(w, r) {
		return
	}
	switch {
	case s.cfg.DevEndpoints && p == "/_emulator/clock":
		s.handleClock(w, r)
	case s.cfg.DevEndpoints && p == "/_emulator/stats":
		s.handleStats(w, r)
	case s.cfg.DevEndpoints && p == "/_emulator/pprof/profile":
		s.handleProfile(w, r)
	default:
		writeError(w, http.StatusNotFound, client.CodeNotFound, "no such endpoint")
	}
}

// FaultCounts is how many /v1/ requests the fault injector saw and how many
// of each kind it injected, for tests to report what a run survived.
type FaultCounts struct {
	Requests int64            `json:"requests"`
	Injected map[string]int64 `json:"injected"`
}

// FaultCounts reads the counters since the emulator started.
func (s *Server) FaultCounts() FaultCounts {
	return s.faults.counts()
}

func (s *Server) handleFaultCounts(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	writeJSON(w, http.StatusOK, s.FaultCounts())
}

// serveDev answers the test hooks of /_emulator/ other than the clock, and
// reports whether p was one of them.
func (s *Server) serveDev(w http.ResponseWriter, r *http.Request, p string) bool {
	switch p {
	case "/_emulator/holds", "/_emulator/faults":
	default:
		return false
	}
	if refuseDev(w, r) {
		return true
	}
	if p == "/_emulator/holds" {
		s.handleHolds(w, r)
	} else {
		s.handleFaultCounts(w, r)
	}
	return true
}

// Stats are the emulator's work counters since it started.
type Stats struct {
	// BcryptCalls is how many bcrypt comparisons authentication ran: with
	// the verified-key cache, one per distinct key, not one per request.
	BcryptCalls int64 `json:"bcrypt_calls"`
	// LogEntries and LogCommits are execution-log entries written and the
	// transactions (fsyncs) that wrote them.
	LogEntries int64 `json:"log_entries"`
	LogCommits int64 `json:"log_commits"`
}

// Stats reads the counters.
func (s *Server) Stats() Stats {
	return Stats{
		BcryptCalls: s.bcryptCalls.Load(),
		LogEntries:  s.writer.entries.Load(),
		LogCommits:  s.writer.commits.Load(),
	}
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	writeJSON(w, http.StatusOK, s.Stats())
}

type clockAnswer struct {
	Now time.Time `json:"now"`
}

func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var req struct {
			Advance string `json:"advance"`
		}
		if !decodeBody(w, r, &req) {
			return
		}
		d, err := duration.Parse(req.Advance)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, `advance must be a non-negative duration such as "90s", "24h" or "2d"`)
			return
		}
		s.Advance(d)
		if err := s.saveClock(r.Context()); err != nil {
			s.internalError(w, err)
			return
		}
	default:
		methodNotAllowed(w, "GET, POST")
		return
	}
	writeJSON(w, http.StatusOK, clockAnswer{Now: s.Now()})
}
