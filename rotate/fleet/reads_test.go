package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plana-cli/plana/rotate"
)

// dueWorld is a world of n overdue keys, each with its own env file, and
// the options that give each its file and make every key due after 365
// days.
func dueWorld(t *testing.T, n int) (*world, Options) {
	t.Helper()
	w := newWorld(t)
	me, err := w.API.Me(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policy := rotate.Policy{Profile: rotate.Settings{Cadence: 365 * 24 * time.Hour}}
	for i := range n {
		plain, k, err := w.Srv.MintKey(context.Background(), me.User.ID, fmt.Sprintf("due %d", i), []string{"stock:read"}, w.Srv.Now().Add(-400*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		env := filepath.Join(dir, fmt.Sprintf("due%d.env", i))
		if err := os.WriteFile(env, []byte("PLANA_KEY="+plain+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		policy.Rules = append(policy.Rules, rotate.Rule{Match: k.Name, Targets: []string{"env-file:" + env}})
	}
	return w, Options{Options: rotate.Options{QuietPeriod: time.Hour, PollInterval: 50 * time.Millisecond, NoWait: true, Yes: true, Policy: policy}, Parallel: 4}
}

// dueNoWait is one run of `plana keys rotate --due --no-wait` through api:
// the keys chosen, then rotated; it returns the requests the run made, by
// kind.
func dueNoWait(t *testing.T, w *world, o Options) (map[string]int, *Result) {
	t.Helper()
	var mu sync.Mutex
	reqs := map[string]int{}
	rot := w.rotator()
	rot.API = w.APIThrough(t, func(r *http.Request) {
		kind := r.Method + " " + r.URL.Path
		if strings.HasPrefix(r.URL.Path, "/v1/api-keys/") {
			kind = r.Method + " /v1/api-keys/{id}"
		}
		mu.Lock()
		reqs[kind]++
		mu.Unlock()
	})
	ctx := context.Background()
	res, err := RotateDue(ctx, rot, o)
	if err != nil && !errors.Is(err, rotate.ErrPending) {
		t.Fatalf("%v\n%s", err, w.rep.Text())
	}
	mu.Lock()
	defer mu.Unlock()
	return reqs, res
}

// A cron line's --due --no-wait run reads once whatever the number of
// rotations under way: one GET /v1/me, one key listing, and one read of
// the execution log (of a page here) for all of them.
func TestDueNoWaitReadsOnce(t *testing.T) {
	counts := map[int]map[string]int{}
	for _, n := range []int{1, 6} {
		w, o := dueWorld(t, n)
		if _, res := dueNoWait(t, w, o); res.Pending != n {
			t.Fatalf("%d keys: the first run left %d waiting: %+v", n, res.Pending, res.Items)
		}
		reqs, res := dueNoWait(t, w, o)
		if res.Pending != n {
			t.Fatalf("%d keys: the second run left %d waiting: %+v", n, res.Pending, res.Items)
		}
		t.Logf("%d rotations under way: %v", n, reqs)
		counts[n] = reqs
	}
	for _, kind := range []string{"GET /v1/me", "GET /v1/api-keys", "GET /v1/execution-log"} {
		if counts[1][kind] != 1 || counts[6][kind] != 1 {
			t.Errorf("%s: %d requests with 1 rotation under way, %d with 6; want 1 each", kind, counts[1][kind], counts[6][kind])
		}
	}
	if counts[6]["GET /v1/api-keys/{id}"] != 0 {
		t.Errorf("%d reads of single keys with 6 rotations under way, want none", counts[6]["GET /v1/api-keys/{id}"])
	}
}
