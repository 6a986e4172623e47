package emulator

import (
	"net/http"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
)

// routeDev answers /_emulator/ paths that route reaches (the hooks of
// serveDev are answered before any hold or fault): each exists only with
// DevEndpoints.
func (s *Server) routeDev(w http.ResponseWriter, r *http.Request, p string) {
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
	case "/_emulator/holds":
		s.handleHolds(w, r)
	case "/_emulator/faults":
		s.handleFaultCounts(w, r)
	default:
		return false
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
