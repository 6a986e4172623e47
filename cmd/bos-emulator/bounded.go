package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
)

// bounded gives each request's body its own deadline and each answer a
// write deadline from its first byte. The body (at most 64 KiB, and one
// byte more to tell the emulator it is too large) is read before h sees the
// request, so that a slow sender is cut off within lim.body wherever h
// would read it. Reading it to its end lifts the deadline (net/http starts
// its background read then, without one), so a request a hold keeps is not
// cut off.
func bounded(h http.Handler, lim limits) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			rc.SetReadDeadline(time.Now().Add(lim.body))
			body, err := io.ReadAll(io.LimitReader(r.Body, emulator.MaxBodyBytes+1))
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					w.Header().Set("Connection", "close")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusRequestTimeout)
					json.NewEncoder(w).Encode(client.ErrorBody{Error: client.ErrorDetail{
						Code: client.CodeInvalidRequest, Message: "the request body did not arrive within " + lim.body.String()}})
				}
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(&writeBound{ResponseWriter: w, rc: rc, d: lim.write}, r)
	})
}

// writeBound sets the connection's write deadline when the answer starts,
// so a client that does not read it cannot hold the handler's connection.
type writeBound struct {
	http.ResponseWriter
	rc      *http.ResponseController
	d       time.Duration
	started bool
}

func (w *writeBound) start() {
	if !w.started {
		w.started = true
		w.rc.SetWriteDeadline(time.Now().Add(w.d))
	}
}

func (w *writeBound) WriteHeader(code int) {
	w.start()
	w.ResponseWriter.WriteHeader(code)
}

func (w *writeBound) Write(p []byte) (int, error) {
	w.start()
	return w.ResponseWriter.Write(p)
}

// Flush and Hijack serve the emulator's faults, which flush an answer or
// drop the connection.
func (w *writeBound) Flush() {
	w.start()
	w.rc.Flush()
}

func (w *writeBound) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.rc.Hijack() }

func (w *writeBound) Unwrap() http.ResponseWriter { return w.ResponseWriter }
