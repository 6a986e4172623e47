package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/textsafe"
)

// MaxBodyBytes bounds every request body the emulator reads; a larger one
// is refused with 413.
const MaxBodyBytes = 64 << 10

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, client.CodeInternal, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers with the contract's error envelope. Messages are fixed
// text or the caller's own non-secret input, never key material.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, client.ErrorBody{Error: client.ErrorDetail{
		Code: code, Message: msg, RequestID: w.Header().Get("X-Request-Id"),
	}})
}

func (s *Server) internalError(w http.ResponseWriter, err error) {
	if s.cfg.Logger != nil {
		s.logMu.Lock()
		fmt.Fprintf(s.cfg.Logger, "bos-emulator: internal error (%s): %s\n", w.Header().Get("X-Request-Id"), textsafe.Clean(err.Error()))
		s.logMu.Unlock()
	}
	writeError(w, http.StatusInternalServerError, client.CodeInternal, "internal error")
}

// unauthenticated answers 401 with the same words whatever the reason, so
// that the answer does not tell an unknown key from a revoked one.
func unauthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="bos"`)
	writeError(w, http.StatusUnauthorized, client.CodeUnauthenticated, "missing, malformed, unknown or revoked API key")
}

// refuse answers 401 to a caller whose key was revoked while its request was
// in flight; the request is logged as refused.
func (s *Server) refuse(w http.ResponseWriter, c *caller) {
	c.refused = true
	unauthenticated(w)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, client.CodeInvalidRequest, "method not allowed; use "+allow)
}

// route answers the request into w and returns the caller whose key the
// request proved, or nil when it proved none (and so is not logged). A
// caller whose key is revoked comes back refused, answered 401.
func (s *Server) route(w http.ResponseWriter, r *http.Request, p string) *caller {
	if p == "/_emulator" || strings.HasPrefix(p, "/_emulator/") {
		s.routeDev(w, r, p)
		return nil
	}
	if !strings.HasPrefix(p, "/v1/") {
		writeError(w, http.StatusNotFound, client.CodeNotFound, "no such endpoint")
		return nil
	}
	c, err := s.authenticate(r)
	if errors.Is(err, errUnauthenticated) || errors.Is(err, errRevoked) {
		unauthenticated(w)
		return c
	}
	if limited := (*errRateLimited)(nil); errors.As(err, &limited) {
		secs := strconv.Itoa(int(math.Ceil(limited.retryAfter.Seconds())))
		w.Header().Set("Retry-After", secs)
		writeError(w, http.StatusTooManyRequests, client.CodeRateLimited, "too many wrong secrets for this key id; retry in "+secs+" s")
		return nil
	}
	if err != nil {
		s.internalError(w, err)
		return nil
	}
	if h, ok := s.takeHold(r, p, holdAuthenticated); ok {
		s.hold(r, p, "authenticated, not handled ("+h.String()+")")
	}

	switch {
	case p == "/v1/me":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
		} else {
			s.handleMe(w, r, c)
		}
	case p == "/v1/api-keys":
		if !requireManage(w, c) {
			break
		}
		switch r.Method {
		case http.MethodGet:
			s.handleListKeys(w, r)
		case http.MethodPost:
			s.handleCreateKey(w, r, c)
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case strings.HasPrefix(p, "/v1/api-keys/"):
		if !requireManage(w, c) {
			break
		}
		rest := strings.TrimPrefix(p, "/v1/api-keys/")
		id, action, _ := strings.Cut(rest, "/")
		switch {
		case action == "" && r.Method == http.MethodGet:
			s.handleGetKey(w, r, id)
		case action == "":
			methodNotAllowed(w, http.MethodGet)
		case action == "revoke" && r.Method == http.MethodPost:
			s.handleRevoke(w, r, c, id)
		case action == "revoke":
			methodNotAllowed(w, http.MethodPost)
		default:
			writeError(w, http.StatusNotFound, client.CodeNotFound, "no such endpoint")
		}
	case p == "/v1/execution-log":
		if !requireManage(w, c) {
			break
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
		} else {
			s.handleLog(w, r)
		}
	default:
		s.handleAutomation(w, r, p)
	}
	return c
}

// decodeBody reads one JSON value into v, refusing unknown fields,
// trailing data and bodies over MaxBodyBytes. It writes the error answer itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, client.CodeInvalidRequest, fmt.Sprintf("body over %d bytes", MaxBodyBytes))
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "reading the body failed")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "malformed JSON body: "+jsonProblem(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, client.CodeInvalidRequest, "malformed JSON body: data after the object")
		return false
	}
	return true
}

// jsonProblem keeps decoder errors short and free of the body's contents.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of body"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "not a JSON object of the expected shape"
}
