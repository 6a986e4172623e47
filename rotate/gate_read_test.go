package rotate

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/gate"
)

// afterFirst runs fn once, just before the first request whose path is
// path is sent.
type afterFirst struct {
	path string
	once sync.Once
	fn   func()
	next http.RoundTripper
}

func (a *afterFirst) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == a.path {
		a.once.Do(a.fn)
	}
	return a.next.RoundTrip(r)
}

// A call the automation makes while the gate reads the execution log is
// stamped after the present the gate read before it: that is no clock
// fault. Found by the e2e scripts, where it was named one on most runs
// (the server's present comes from a Date header in whole seconds).
func TestGateCallDuringTheLogReadIsNoFutureUse(t *testing.T) {
	const q = 2 * time.Second
	w := newWorld(t)
	startRotation(t, w, q)
	j, err := w.rotator().journals().load(w.Old.ID)
	if err != nil || j == nil {
		t.Fatalf("journal: %v", err)
	}
	rt := &afterFirst{path: "/v1/execution-log", next: http.DefaultTransport, fn: func() {
		// The read takes a second and a half, and the automation calls
		// with the old key meanwhile.
		w.Srv.Advance(1500 * time.Millisecond)
		if err := w.Call("stock-sync/1.4", w.OldPlain); err != nil {
			t.Error(err)
		}
	}}
	token, _, err := w.Srv.MintKey(context.Background(), w.Old.CreatedBy.ID, "gate reader", []string{client.ScopeManage}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	api, err := client.New(w.URL, client.WithKeys(token), client.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := gate.New(api, j.gateConfig(q, true)).Eval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OldQuiet || !rep.FutureUse.IsZero() || strings.Contains(rep.Summary(), "clock fault") {
		t.Fatalf("a call made during the read: want the old key busy and no future use, got %+v: %s", rep, rep.Summary())
	}
}
