package emulator

import (
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/textsafe"
)

// Hold stops one request part-way, so that a test can kill the client at
// exactly that moment, or act while the request waits: the first request
// that matches is held, on arrival, once its key is proven (Authenticated)
// or once handled with its answer ready (After), until the client goes away
// or the holds are released.
// Holding a handled request is how a test loses an answer the server acted
// on, such as a create whose plaintext never reaches the client. Holding an
// authenticated one is how a test revokes a key while its request is in
// flight; such a request goes on when released, as a slow request would.
type Hold struct {
	Method string `json:"method"`
	// Path is a path.Match pattern, e.g. /v1/api-keys/*/revoke.
	Path string `json:"path"`
	// KeyPrefix, when set, matches only requests presenting that key;
	// ExceptKeyPrefix only requests presenting any other (or none).
	KeyPrefix       string `json:"key_prefix,omitempty"`
	ExceptKeyPrefix string `json:"except_key_prefix,omitempty"`
	Authenticated   bool   `json:"authenticated,omitempty"`
	After           bool   `json:"after,omitempty"`
}

// holdStage is where in its handling a request may be held.
type holdStage int

const (
	holdArrival holdStage = iota
	holdAuthenticated
	holdHandled
)

func (h Hold) stage() holdStage {
	switch {
	case h.After:
		return holdHandled
	case h.Authenticated:
		return holdAuthenticated
	}
	return holdArrival
}

// maxHold bounds a hold whose client never goes away, so that a test gone
// wrong cannot wedge the emulator's shutdown.
const maxHold = 30 * time.Second

func (h Hold) matches(r *http.Request, p string) bool {
	if !strings.EqualFold(h.Method, r.Method) {
		return false
	}
	if ok, _ := path.Match(h.Path, p); !ok {
		return false
	}
	tok, _ := bearerToken(r)
	prefix := client.PrefixOf(tok)
	if h.KeyPrefix != "" && prefix != h.KeyPrefix {
		return false
	}
	return h.ExceptKeyPrefix == "" || prefix != h.ExceptKeyPrefix
}

func (h Hold) String() string {
	s := h.Method + " " + h.Path
	if h.KeyPrefix != "" {
		s += " with " + h.KeyPrefix
	}
	if h.ExceptKeyPrefix != "" {
		s += " without " + h.ExceptKeyPrefix
	}
	if h.Authenticated {
		s += " once authenticated"
	}
	return s
}

// holds are the armed holds, each used up by the first request it matches.
type holds struct {
	mu      sync.Mutex
	armed   []Hold
	release chan struct{} // closed to let every held request go on
}

func (hs *holds) released() <-chan struct{} {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.release == nil {
		hs.release = make(chan struct{})
	}
	return hs.release
}

// ReleaseHolds lets every held request go on and disarms the holds not yet
// used.
func (s *Server) ReleaseHolds() {
	hs := &s.holds
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.release != nil {
		close(hs.release)
		hs.release = nil
	}
	hs.armed = nil
}

// ArmHold holds the next request matching h.
func (s *Server) ArmHold(h Hold) error {
	if h.Method == "" || !strings.HasPrefix(h.Path, "/") {
		return fmt.Errorf("a hold needs a method and a path starting with /")
	}
	if h.Authenticated && h.After {
		return fmt.Errorf("a hold is either authenticated or after, not both")
	}
	if _, err := path.Match(h.Path, "/"); err != nil {
		return fmt.Errorf("hold path %q: %w", h.Path, err)
	}
	s.holds.mu.Lock()
	defer s.holds.mu.Unlock()
	s.holds.armed = append(s.holds.armed, h)
	return nil
}

// takeHold returns, and disarms, the first hold r matches at stage.
func (s *Server) takeHold(r *http.Request, p string, stage holdStage) (Hold, bool) {
	s.holds.mu.Lock()
	defer s.holds.mu.Unlock()
	for i, h := range s.holds.armed {
		if h.stage() == stage && h.matches(r, p) {
			s.holds.armed = append(s.holds.armed[:i], s.holds.armed[i+1:]...)
			return h, true
		}
	}
	return Hold{}, false
}

// hold logs that the request is held (the line a test waits for) and blocks
// until the client goes away, the holds are released or maxHold passes. It
// reports whether the client is still there.
func (s *Server) hold(r *http.Request, p, what string) bool {
	release := s.holds.released()
	if s.cfg.Logger != nil {
		s.logMu.Lock()
		fmt.Fprintf(s.cfg.Logger, "bos-emulator: holding %s %s: %s\n", textsafe.Clean(r.Method), textsafe.Clean(p), textsafe.Clean(what))
		s.logMu.Unlock()
	}
	t := time.NewTimer(maxHold)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-release:
		return true
	case <-t.C:
		return true
	}
}

// handleHolds arms a hold (POST /_emulator/holds with a Hold as JSON) or
// releases them all (DELETE).
func (s *Server) handleHolds(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodDelete:
		s.ReleaseHolds()
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		methodNotAllowed(w, "POST, DELETE")
		return
	}
	var h Hold
	if !decodeBody(w, r, &h) {
		return
	}
	if err := s.ArmHold(h); err != nil {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, h)
}
