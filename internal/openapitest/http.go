package openapitest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Middleware is Load(t).Middleware(t, h).
func Middleware(t testing.TB, h http.Handler) http.Handler { return Load(t).Middleware(t, h) }

// Transport is Load(t).Transport(t, base).
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	return Load(t).Transport(t, base)
}

// Middleware checks every request reaching h and every answer h writes, and
// fails t on a mismatch. The answer still reaches the client unchanged.
func (d *Doc) Middleware(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// The client went away mid-body; there is nothing to check.
			http.Error(w, "reading the body failed", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.hijacked {
			// A dropped connection (fault injection) has no answer to check.
			return
		}
		if rec.status == 0 {
			rec.WriteHeader(http.StatusOK)
		}
		res := d.Check(r.Context(), Exchange{Request: r, RequestBody: body,
			Status: rec.status, Header: rec.header, Body: rec.body.Bytes()})
		for _, p := range res.Problems {
			t.Errorf("openapitest (server side) %s %s: %s", r.Method, r.URL.Path, p)
		}
	})
}

// recorder copies what a handler writes so it can be checked afterwards.
type recorder struct {
	http.ResponseWriter
	status   int
	header   http.Header
	body     bytes.Buffer
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	r.status = code
	r.header = r.ResponseWriter.Header().Clone()
	// net/http adds Date itself unless the handler set or suppressed it.
	if _, set := r.header["Date"]; !set {
		r.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("openapitest: %T cannot hijack", r.ResponseWriter)
	}
	r.hijacked = true
	return hj.Hijack()
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Transport checks every request a client sends and every answer it gets
// back, failing t on a mismatch. base nil means http.DefaultTransport.
// Transport errors pass through unchecked.
func (d *Doc) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{doc: d, t: t, base: base}
}

type transport struct {
	doc  *Doc
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		// RoundTrippers must not modify the caller's request.
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := tr.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		// A connection cut mid-answer: the client sees the same error.
		return nil, err
	}
	res := tr.doc.Check(req.Context(), Exchange{Request: req, RequestBody: body,
		Status: resp.StatusCode, Header: resp.Header, Body: data})
	where := fmt.Sprintf("openapitest (client side) %s %s", req.Method, req.URL.Path)
	switch deliberate := markedInvalid(req.Context()); {
	case deliberate && res.RequestErr == nil && res.OperationID != "":
		tr.t.Errorf("%s: the request was meant to break the contract, but the doc accepts it", where)
	case !deliberate && res.RequestErr != nil:
		tr.t.Errorf("%s: the client sent a request the doc refuses: %s", where, clean(res.RequestErr))
	}
	for _, p := range res.Problems {
		tr.t.Errorf("%s: %s", where, p)
	}
	return resp, nil
}
