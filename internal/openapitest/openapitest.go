// Package openapitest checks HTTP traffic against docs/openapi.yaml, the BOS
// API contract, from either end: Middleware wraps a server's handler and
// Transport wraps a client's http.RoundTripper. A mismatch fails the test.
//
// What counts as a mismatch:
//   - an answer to a request the doc accepts must be documented for its
//     operation: status, required headers and body schema;
//   - a request the doc refuses (bad parameter, body, missing Authorization,
//     unknown path or method) must be refused by the server with a 4xx error
//     envelope, documented for the operation when there is one. A server that
//     answers such a request with 2xx has drifted from the doc;
//   - on the client side (Transport), sending a request the doc refuses is a
//     client bug, unless the test marked it with WithInvalidRequest to see the
//     server refuse it, in which case the doc must refuse it.
//
// The emulator's dev endpoints (/_emulator/...) are outside the contract and
// pass unchecked.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/plana-cli/plana/client"
)

// DocPath is the contract's location relative to the module root.
const DocPath = "docs/openapi.yaml"

// devPrefix is the emulator's test-only surface, not part of the API.
const devPrefix = "/_emulator/"

// Doc is the loaded contract. It records which operations and statuses the
// traffic it checked exercised, so a test can insist every operation was hit.
// It is safe for concurrent use.
type Doc struct {
	spec   *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]int // operationId -> status -> answers checked
}

var (
	parseOnce sync.Once
	parsed    *openapi3.T
	parsedRtr routers.Router
	parseErr  error
)

// Load reads docs/openapi.yaml from the module root (found from the working
// directory, which go test sets to the package's own directory). The parse is
// shared; each Doc keeps its own record of what was exercised.
func Load(t testing.TB) *Doc {
	t.Helper()
	parseOnce.Do(func() {
		var path string
		if path, parseErr = findDoc(); parseErr == nil {
			parsed, parsedRtr, parseErr = parse(path)
		}
	})
	if parseErr != nil {
		t.Fatalf("openapitest: %v", parseErr)
	}
	return &Doc{spec: parsed, router: parsedRtr, seen: map[string]map[int]int{}}
}

// LoadFile reads a contract from path, for checking a doc other than the
// project's own.
func LoadFile(t testing.TB, path string) *Doc {
	t.Helper()
	spec, rtr, err := parse(path)
	if err != nil {
		t.Fatalf("openapitest: %v", err)
	}
	return &Doc{spec: spec, router: rtr, seen: map[string]map[int]int{}}
}

func findDoc() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, filepath.FromSlash(DocPath)), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; cannot find " + DocPath)
		}
		dir = parent
	}
}

func parse(path string) (*openapi3.T, routers.Router, error) {
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s: %w", path, err)
	}
	if err := spec.Validate(loader.Context); err != nil {
		return nil, nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", path, err)
	}
	// The doc's servers name the emulator's default address; tests listen on
	// random ports, so route on paths alone.
	spec.Servers = nil
	rtr, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("routing %s: %w", path, err)
	}
	return spec, rtr, nil
}

// Spec is the parsed document.
func (d *Doc) Spec() *openapi3.T { return d.spec }

// OperationIDs lists every operation of the doc, sorted.
func (d *Doc) OperationIDs() []string {
	var ids []string
	for _, item := range d.spec.Paths.Map() {
		for _, op := range item.Operations() {
			ids = append(ids, op.OperationID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Exercised returns, per operation id, the statuses of the answers checked.
func (d *Doc) Exercised() map[string][]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string][]int, len(d.seen))
	for id, statuses := range d.seen {
		for st := range statuses {
			out[id] = append(out[id], st)
		}
		slices.Sort(out[id])
	}
	return out
}

// Unexercised lists the operations no checked exchange has reached yet.
func (d *Doc) Unexercised() []string {
	seen := d.Exercised()
	var out []string
	for _, id := range d.OperationIDs() {
		if len(seen[id]) == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (d *Doc) record(opID string, status int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[opID] == nil {
		d.seen[opID] = map[int]int{}
	}
	d.seen[opID][status]++
}

type invalidKey struct{}

// WithInvalidRequest marks requests made with ctx as deliberately breaking the
// contract, so that Transport lets them through (and insists that the doc
// does refuse them, and that the server answers with a documented 4xx).
func WithInvalidRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, invalidKey{}, true)
}

func markedInvalid(ctx context.Context) bool {
	v, _ := ctx.Value(invalidKey{}).(bool)
	return v
}

// Exchange is one request and its answer, as seen on the wire.
type Exchange struct {
	Request     *http.Request // its Body is ignored: RequestBody is used
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// Result is what Check found.
type Result struct {
	OperationID string // "" when the doc has no operation for the request
	// RequestErr says why the doc refuses the request; nil when it accepts it.
	RequestErr error
	// Problems are the ways the answer breaks the contract.
	Problems []string
}

// Check validates one exchange and records the operation it exercised. It
// returns a zero Result for the emulator's dev endpoints.
func (d *Doc) Check(ctx context.Context, ex Exchange) Result {
	var res Result
	if strings.HasPrefix(ex.Request.URL.Path, devPrefix) {
		return res
	}
	opts := &openapi3filter.Options{
		// Validation must never alter the request it inspects.
		SkipSettingDefaults:               true,
		IncludeResponseStatus:             true,
		MultiError:                        true,
		RejectWhenRequestBodyNotSpecified: true,
		AuthenticationFunc:                bearerPresent,
	}
	route, params, err := d.router.FindRoute(ex.Request)
	if err != nil {
		res.RequestErr = fmt.Errorf("%s %s: %w", ex.Request.Method, ex.Request.URL.Path, err)
		res.Problems = d.checkBareError(ex)
		return res
	}
	res.OperationID = route.Operation.OperationID

	req := ex.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(ex.RequestBody))
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	res.RequestErr = openapi3filter.ValidateRequest(ctx, in)

	if res.RequestErr != nil && (ex.Status < 400 || ex.Status > 499) {
		res.Problems = append(res.Problems, fmt.Sprintf(
			"the server answered %d to a request the doc refuses (%s); it must answer with a 4xx error",
			ex.Status, clean(res.RequestErr)))
	}
	header := ex.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 ex.Status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(ex.Body)),
		Options:                opts,
	})
	if err != nil {
		res.Problems = append(res.Problems, fmt.Sprintf("answer %d breaks the doc: %s", ex.Status, clean(err)))
	}
	if len(res.Problems) == 0 {
		d.record(res.OperationID, ex.Status)
	}
	return res
}

// checkBareError validates the answer to a request no operation covers: it
// must be a 4xx carrying the contract's error envelope.
func (d *Doc) checkBareError(ex Exchange) []string {
	var problems []string
	if ex.Status < 400 || ex.Status > 499 {
		problems = append(problems, fmt.Sprintf(
			"the server answered %d to %s %s, which the doc does not have; it must answer with a 4xx error",
			ex.Status, ex.Request.Method, ex.Request.URL.Path))
	}
	ref := d.spec.Components.Schemas["Error"]
	if ref == nil || ref.Value == nil {
		return append(problems, "the doc has no components/schemas/Error")
	}
	var v any
	if err := json.Unmarshal(ex.Body, &v); err != nil {
		return append(problems, fmt.Sprintf("error answer %d is not JSON: %v", ex.Status, err))
	}
	if err := ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		problems = append(problems, fmt.Sprintf("error answer %d breaks the error envelope: %s", ex.Status, clean(err)))
	}
	if ex.Header.Get("X-Request-Id") == "" {
		problems = append(problems, fmt.Sprintf("error answer %d has no X-Request-Id", ex.Status))
	}
	return problems
}

// bearerPresent only checks that a bearer credential is there when the
// operation needs one: whether it is valid is the server's call.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok && strings.TrimSpace(tok) != "" {
		return nil
	}
	return in.NewError(errors.New("no Authorization: Bearer header"))
}

// clean keeps validator messages readable and free of key material: kin
// quotes the offending values, which may include a plaintext.
func clean(err error) string {
	s := client.Redact(err.Error())
	const max = 2000
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
