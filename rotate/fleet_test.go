package rotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

func TestWaitingRotationsDoNotHoldASlot(t *testing.T) {
	const n, parallel = 12, 3
	var jobs []FleetJob
	for i := range n {
		jobs = append(jobs, FleetJob{Key: client.APIKey{ID: fmt.Sprint(i), Name: fmt.Sprintf("job %d", i)}, Targets: []string{"exec:true"}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var working, peak, waiting atomic.Int64
	allWaiting := make(chan struct{})
	var once sync.Once
	work := func() {
		if w := working.Add(1); w > peak.Load() {
			peak.Store(w) // a racy max is enough: any excess shows
		}
		time.Sleep(time.Millisecond) // a step's work
		working.Add(-1)
	}
	// Each rotation works, parks a wait, then works again.
	then := &stepRow{name: "work", done: func(*Journal) bool { return false }, run: func(*session, context.Context) error { work(); return nil }}
	res := RunFleet(ctx, jobs, parallel, func(ctx context.Context, job FleetJob) (*Result, error) {
		work()
		counted := false
		s := &session{j: &Journal{}, res: &Result{}, rest: []*stepRow{then}, parked: &testWait{look: func() (bool, time.Duration) {
			// Every rotation reaches its gate before any passes: only
			// possible if waiting gives the slot back.
			if !counted && waiting.Add(1) == n {
				once.Do(func() { close(allWaiting) })
			}
			counted = true
			select {
			case <-allWaiting:
				return true, 0
			default:
				return false, time.Millisecond
			}
		}}}
		return nil, &parkedError{s: s}
	}, nil)
	if res.Done != n || res.Err() != nil {
		t.Fatalf("done %d of %d: %v (%+v)", res.Done, n, res.Err(), res.Items)
	}
	if p := peak.Load(); p > parallel {
		t.Errorf("%d rotations worked at once, --parallel %d", p, parallel)
	}
}

// testWait is a parked wait whose looks are next's.
type testWait struct {
	look func() (bool, time.Duration)
	err  error
}

func (w *testWait) next(context.Context) (bool, time.Duration, error) {
	done, after := w.look()
	return done, after, nil
}
func (w *testWait) ended(err error) { w.err = err }

func TestFleetOutcomes(t *testing.T) {
	mk := func(name string, targets ...string) FleetJob {
		j := FleetJob{Key: client.APIKey{ID: "id-" + name, Name: name, Prefix: "pa_live_" + name}, Targets: targets}
		if len(targets) == 0 {
			j.Skip = "no target in rotation.targets"
		}
		return j
	}
	outcome := map[string]error{"ok": nil, "wait": fmt.Errorf("gate: %w", ErrPending), "bad": errors.New("deploy failed for pa_live_AB7K2XYZ" + strings.Repeat("a", 38))}
	run := func(jobs ...FleetJob) *BulkResult {
		return RunFleet(context.Background(), jobs, 4, func(_ context.Context, j FleetJob) (*Result, error) {
			return &Result{}, outcome[j.Key.Name]
		}, nil)
	}
	res := run(mk("ok", "exec:a"), mk("untargeted"))
	if res.Err() != nil || res.Done != 1 || res.Skipped != 1 || res.Items[1].State != BulkSkipped || res.Items[1].Error != "no target in rotation.targets" {
		t.Errorf("a due key without a target must be listed and change nothing: %v %+v", res.Err(), res)
	}
	res = run(mk("ok", "exec:a"), mk("wait", "exec:b"), mk("untargeted"))
	if !errors.Is(res.Err(), ErrPending) || res.Pending != 1 {
		t.Errorf("one pending: %v %+v", res.Err(), res)
	}
	res = run(mk("bad", "exec:a"), mk("wait", "exec:b"))
	if err := res.Err(); err == nil || errors.Is(err, ErrPending) || !strings.Contains(err.Error(), "1 of 2 rotations failed") {
		t.Errorf("one failed: %v", err)
	}
	if e := res.Items[0].Error; keyShape.MatchString(e) || res.Items[0].State != BulkFailed {
		t.Errorf("failed item: %+v", res.Items[0])
	}
}

func TestSharedTargets(t *testing.T) {
	if err := CheckSharedTargets([]string{"env-file:/a.env"}, 2); err == nil || !strings.Contains(err.Error(), "rotation.targets") {
		t.Errorf("one env file for two keys: %v", err)
	}
	if err := CheckSharedTargets([]string{"stdout"}, 3); err == nil {
		t.Error("stdout for three keys must be refused")
	}
	if err := CheckSharedTargets([]string{"env-file:/a.env"}, 1); err != nil {
		t.Errorf("one key: %v", err)
	}
	if err := CheckSharedTargets([]string{"exec:./deploy"}, 5); err != nil {
		t.Errorf("an exec target knows the key from its environment: %v", err)
	}
}

// A bulk run of several keys at once, each to its own env file, the gates
// waiting together on one feed: every key done, each file holding its own
// successor.
func TestRotateFleetInParallel(t *testing.T) {
	for _, emergency := range []string{"", ReasonDeparted} {
		t.Run("emergency="+emergency, func(t *testing.T) {
			w := newWorld(t)
			keys := mintFleet(t, w, 6)
			dir := t.TempDir()
			envs := map[string]string{}
			var ks []client.APIKey
			for i, k := range keys {
				envs[k.key.ID] = filepath.Join(dir, fmt.Sprintf("job%d.env", i))
				if err := os.WriteFile(envs[k.key.ID], []byte("PLANA_KEY="+k.plain+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				ks = append(ks, k.key)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Each job calls with its env file's keys, new first.
			var wg sync.WaitGroup
			for _, path := range envs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						data, _ := os.ReadFile(path)
						var use []string
						for _, name := range []string{EnvKeyNew, EnvKey} {
							if v, ok := LookupEnv(data, name); ok {
								use = append(use, v)
							}
						}
						w.call("job/"+filepath.Base(path), use...)
						time.Sleep(5 * time.Millisecond) // the job's own pace
					}
				}()
			}
			defer wg.Wait()
			defer cancel()
			w.pushClock()
			opts := Options{QuietPeriod: time.Hour, PollInterval: 10 * time.Millisecond, Timeout: 30 * time.Second, Yes: true,
				Parallel: 3, Emergency: emergency,
				Policy: func(k client.APIKey) FleetJob { return FleetJob{Targets: []string{"env-file:" + envs[k.ID]}} }}
			rot := w.rotator()
			store := &probeCounter{Store: w.store}
			rot.Secrets = store
			res, err := rot.RotateFleet(ctx, ks, opts)
			if err != nil || res.Done != len(ks) {
				t.Fatalf("%v: %+v\n%s", err, res, w.rep.text())
			}
			if n := store.probes.Load(); n != 1 {
				t.Errorf("the keyring was probed %d times in one bulk run, want once", n)
			}
			for _, it := range res.Items {
				data, _ := os.ReadFile(envs[it.Old.ID])
				v, _ := LookupEnv(data, EnvKey)
				if client.PrefixOf(v) != it.Result.New.Prefix || strings.Contains(string(data), EnvKeyNew) {
					t.Errorf("%s holds %s, want only its own successor %s", envs[it.Old.ID], client.PrefixOf(v), it.Result.New.Prefix)
				}
			}
		})
	}
}

// probeCounter counts the keyring probes' writes.
type probeCounter struct {
	secret.Store
	probes atomic.Int32
}

func (s *probeCounter) Set(name, value string) error {
	if strings.HasPrefix(name, "probe:") {
		s.probes.Add(1)
	}
	return s.Store.Set(name, value)
}

// The race rule's wait after a create gives the slot back: with one slot,
// every rotation of the fleet creates its successor while the first still
// waits to settle. Holding the slot, they would settle one after another.
func TestSettlingRotationsDoNotHoldASlot(t *testing.T) {
	w := newWorld(t)
	keys := mintFleet(t, w, 3)
	var ks []client.APIKey
	names := map[string]bool{}
	for _, k := range keys {
		ks = append(ks, k.key)
		names[k.key.Name] = true
	}
	rot := w.rotator()
	rot.SettleDelay = time.Hour // the test ends it: nobody settles meanwhile
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *BulkResult, 1)
	go func() {
		res, _ := rot.RotateFleet(ctx, ks, Options{Parallel: 1, Yes: true, PollInterval: 10 * time.Millisecond,
			Policy: func(client.APIKey) FleetJob { return FleetJob{Targets: []string{"exec:true"}} }})
		done <- res
	}()
	created := func() int {
		n := 0
		for _, k := range w.keys(client.StatusActive) {
			for name := range names {
				if k.Name != name && isSuccessorName(name, k.Name) {
					n++
				}
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for created() < len(ks) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d successors created while the first settles: a settling rotation holds its slot", created(), len(ks))
		}
		time.Sleep(10 * time.Millisecond) // polling the server's state
	}
	cancel()
	<-done
}

// A fleet's rotation waiting, after its create or on its gate, holds no
// goroutine: a goroutine parked inside the walk keeps the deep stack it
// had, 16 to 32 KB for each of a hundred rotations.
func TestFleetWaitsWithoutAGoroutine(t *testing.T) {
	for _, tc := range []struct {
		wait, line, stopped string
		settle              time.Duration
	}{
		{"after the create", "checking no other machine created a successor", "stopped at step 1 (settle)", time.Hour},
		{"on the gate", "waiting: the new key", "stopped at step 3", 0},
	} {
		t.Run(tc.wait, func(t *testing.T) {
			w, ks, opts := unusedFleet(t, 3)
			opts.PollInterval = 200 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rot := w.rotator()
			rot.SettleDelay = tc.settle
			done := make(chan *BulkResult)
			go func() {
				res, _ := rot.RotateFleet(ctx, ks, opts)
				done <- res
			}()
			eventually(t, "every rotation to wait "+tc.wait, func() bool {
				txt := w.rep.text()
				for _, k := range ks {
					if !strings.Contains(txt, k.Prefix+": "+tc.line) {
						return false
					}
				}
				return true
			})
			// The goroutines that ran the rotations up to their waits end
			// (one may still be handing its wait over when the line shows).
			var holder string
			eventually(t, "no goroutine to hold a waiting rotation", func() bool {
				holder = ""
				for _, g := range goroutineStacks() {
					if strings.Contains(g, "(*session).walk(") || strings.Contains(g, "rotate.RunFleet.func") {
						holder = g
					}
				}
				return holder == ""
			})
			// Two more rounds of looks at every gate, watched all along: a
			// look does not wait inside for the feed's next read either.
			w.rep.mu.Lock()
			until := w.rep.checks + 2*len(ks)
			w.rep.mu.Unlock()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for deadline := time.Now().Add(10 * time.Second); tc.settle == 0; <-tick.C {
				for _, g := range goroutineStacks() {
					blocked := strings.Contains(g, " [select") || strings.Contains(g, " [chan receive")
					if blocked && strings.Contains(g, "(*awaiter).look(") && strings.Contains(g, "(*Subscription).NextAfter(") {
						t.Fatalf("a look at a gate waits for the feed's next read:\n%s", g)
					}
				}
				w.rep.mu.Lock()
				checked := w.rep.checks >= until
				w.rep.mu.Unlock()
				if checked {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the gates were not checked twice more")
				}
			}
			cancel()
			res := <-done
			for _, it := range res.Items {
				if it.State != BulkFailed || !strings.Contains(it.Error, tc.stopped) {
					t.Errorf("%s: %s %q, want %s", it.Old.Name, it.State, it.Error, tc.stopped)
				}
			}
		})
	}
}

// A fleet's wait on a gate ends at its timeout: pending, to resume later.
func TestFleetWaitTimesOut(t *testing.T) {
	w, ks, opts := unusedFleet(t, 2)
	opts.Timeout = 300 * time.Millisecond
	res, err := w.rotator().RotateFleet(context.Background(), ks, opts)
	if !errors.Is(err, ErrPending) || res.Pending != len(ks) {
		t.Fatalf("want every rotation pending at its gate: %v %+v", err, res.Items)
	}
	for _, it := range res.Items {
		if !strings.Contains(it.Error, "has not been used yet") {
			t.Errorf("%s: %q, want the gate's report", it.Old.Name, it.Error)
		}
	}
}

// unusedFleet is n keys each deployed to its own env file, which no
// automation reads: a fleet rotating them waits on every gate.
func unusedFleet(t *testing.T, n int) (*world, []client.APIKey, Options) {
	t.Helper()
	w := newWorld(t)
	dir := t.TempDir()
	var ks []client.APIKey
	envs := map[string]string{}
	for i, k := range mintFleet(t, w, n) {
		envs[k.key.ID] = filepath.Join(dir, fmt.Sprintf("job%d.env", i))
		if err := os.WriteFile(envs[k.key.ID], []byte("PLANA_KEY="+k.plain+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k.key)
	}
	return w, ks, Options{QuietPeriod: time.Hour, PollInterval: 10 * time.Millisecond, Timeout: time.Minute, Yes: true, Parallel: 2,
		Policy: func(k client.APIKey) FleetJob { return FleetJob{Targets: []string{"env-file:" + envs[k.ID]}} }}
}

// goroutineStacks is every goroutine's stack, one string each.
func goroutineStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}
