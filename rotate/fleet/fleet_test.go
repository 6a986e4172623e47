package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/target"
)

// Never more than parallel rotations work at once, and a rotation waiting
// holds no slot: every rotation of the fleet reaches its wait before any
// wait ends, which only rotations that gave their slot back can do.
func TestWaitingRotationsDoNotHoldASlot(t *testing.T) {
	const n, parallel = 12, 3
	var jobs []Job
	for i := range n {
		jobs = append(jobs, Job{Key: client.APIKey{ID: fmt.Sprint(i), Name: fmt.Sprintf("job %d", i)}, Targets: []string{"exec:true"}})
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
	res := runJobs(ctx, jobs, parallel, func(ctx context.Context, job Job, waits waits) (*rotate.Result, error) {
		work()
		err := waits(ctx, func(ctx context.Context) error {
			if waiting.Add(1) == n {
				once.Do(func() { close(allWaiting) })
			}
			select {
			case <-allWaiting:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil {
			return nil, err
		}
		work()
		return &rotate.Result{}, nil
	}, nil)
	if res.Done != n || res.Err() != nil {
		t.Fatalf("done %d of %d: %v (%+v)", res.Done, n, res.Err(), res.Items)
	}
	if p := peak.Load(); p > parallel {
		t.Errorf("%d rotations worked at once, --parallel %d", p, parallel)
	}
}

func TestFleetOutcomes(t *testing.T) {
	mk := func(name string, targets ...string) Job {
		j := Job{Key: client.APIKey{ID: "id-" + name, Name: name, Prefix: "pa_live_" + name}, Targets: targets}
		if len(targets) == 0 {
			j.Skip = "no target in rotation.targets"
		}
		return j
	}
	outcome := map[string]error{"ok": nil, "wait": fmt.Errorf("gate: %w", rotate.ErrPending), "bad": errors.New("deploy failed for pa_live_AB7K2XYZ" + strings.Repeat("a", 38))}
	run := func(jobs ...Job) *Result {
		return runJobs(context.Background(), jobs, 4, func(_ context.Context, j Job, _ waits) (*rotate.Result, error) {
			return &rotate.Result{}, outcome[j.Key.Name]
		}, nil)
	}
	res := run(mk("ok", "exec:a"), mk("untargeted"))
	if res.Err() != nil || res.Done != 1 || res.Skipped != 1 || res.Items[1].State != Skipped || res.Items[1].Error != "no target in rotation.targets" {
		t.Errorf("a due key without a target must be listed and change nothing: %v %+v", res.Err(), res)
	}
	res = run(mk("ok", "exec:a"), mk("wait", "exec:b"), mk("untargeted"))
	if !errors.Is(res.Err(), rotate.ErrPending) || res.Pending != 1 {
		t.Errorf("one pending: %v %+v", res.Err(), res)
	}
	res = run(mk("bad", "exec:a"), mk("wait", "exec:b"))
	if err := res.Err(); err == nil || errors.Is(err, rotate.ErrPending) || !strings.Contains(err.Error(), "1 of 2 rotations failed") {
		t.Errorf("one failed: %v", err)
	}
	if e := res.Items[0].Error; rotatetest.KeyShape.MatchString(e) || res.Items[0].State != Failed {
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
	if err := CheckSharedTargets([]string{"exec:./deploy", "exec-ab:./slots"}, 5); err != nil {
		t.Errorf("an exec target knows the key from its environment: %v", err)
	}
	for _, store := range []string{"k8s:stock/key", "aws-sm:prod/stock", "aws-ssm:/prod/stock", "sops:/srv/stock.env", "pass:ci/stock"} {
		if err := CheckSharedTargets([]string{store}, 2); err == nil {
			t.Errorf("one %s for two keys must be refused", store)
		}
	}
}

// A bulk run of several keys at once, each to its own env file, the gates
// waiting together on one feed: every key done, each file holding its own
// successor.
func TestRotateFleetInParallel(t *testing.T) {
	for _, emergency := range []string{"", rotate.ReasonDeparted} {
		t.Run("emergency="+emergency, func(t *testing.T) {
			w := newWorld(t)
			keys := w.Mint(t, 6)
			dir := t.TempDir()
			envs := map[string]string{}
			var ks []client.APIKey
			for i, k := range keys {
				envs[k.Key.ID] = filepath.Join(dir, fmt.Sprintf("job%d.env", i))
				if err := os.WriteFile(envs[k.Key.ID], []byte("PLANA_KEY="+k.Plain+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				ks = append(ks, k.Key)
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
						for _, name := range []string{target.NewKeySlot, target.KeySlot} {
							if v, ok := target.LookupEnv(data, name); ok {
								use = append(use, v)
							}
						}
						w.Call("job/"+filepath.Base(path), use...)
						time.Sleep(5 * time.Millisecond) // the job's own pace
					}
				}()
			}
			defer wg.Wait()
			defer cancel()
			w.pushClock()
			opts := Options{Options: rotate.Options{QuietPeriod: time.Hour, PollInterval: 10 * time.Millisecond, Timeout: 30 * time.Second, Yes: true,
				Emergency: emergency, Policy: envRules(ks, envs)}, Parallel: 3}
			rot := w.rotator()
			store := &probeCounter{Store: w.Store}
			rot.Secrets = store
			res, err := Rotate(ctx, rot, ks, opts)
			if err != nil || res.Done != len(ks) {
				t.Fatalf("%v: %+v\n%s", err, res, w.rep.Text())
			}
			if n := store.probes.Load(); n != 1 {
				t.Errorf("the keyring was probed %d times in one bulk run, want once", n)
			}
			for _, it := range res.Items {
				data, _ := os.ReadFile(envs[it.Old.ID])
				v, _ := target.LookupEnv(data, target.KeySlot)
				if client.PrefixOf(v) != it.Result.New.Prefix || strings.Contains(string(data), target.NewKeySlot) {
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
	keys := w.Mint(t, 3)
	var ks []client.APIKey
	names := map[string]bool{}
	for _, k := range keys {
		ks = append(ks, k.Key)
		names[k.Key.Name] = true
	}
	rot := w.rotator()
	rot.SettleDelay = time.Hour // the test ends it: nobody settles meanwhile
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *Result, 1)
	go func() {
		res, _ := Rotate(ctx, rot, ks, Options{Options: rotate.Options{Yes: true, PollInterval: 10 * time.Millisecond,
			Policy: rotate.Policy{Rules: []rotate.Rule{{Match: "*", Targets: []string{"exec:true"}}}}}, Parallel: 1})
		done <- res
	}()
	created := func() int {
		n := 0
		for _, k := range w.Keys(client.StatusActive) {
			for name := range names {
				if k.Name != name && lineage.IsSuccessorName(name, k.Name) {
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

// Ctrl-C ends every rotation of a fleet promptly, wherever it waits
// (after its create, on its gate), each saying where it stopped.
func TestCancelEndsEveryWaitingRotation(t *testing.T) {
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
			done := make(chan *Result)
			go func() {
				res, _ := Rotate(ctx, rot, ks, opts)
				done <- res
			}()
			rotatetest.Eventually(t, "every rotation to wait "+tc.wait, func() bool {
				txt := w.rep.Text()
				for _, k := range ks {
					if !strings.Contains(txt, k.Prefix+": "+tc.line) {
						return false
					}
				}
				return true
			})
			cancel()
			var res *Result
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the fleet did not end within 10s of Ctrl-C")
			}
			for _, it := range res.Items {
				if it.State != Failed || !strings.Contains(it.Error, tc.stopped) {
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
	res, err := Rotate(context.Background(), w.rotator(), ks, opts)
	if !errors.Is(err, rotate.ErrPending) || res.Pending != len(ks) {
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
	for i, k := range w.Mint(t, n) {
		envs[k.Key.ID] = filepath.Join(dir, fmt.Sprintf("job%d.env", i))
		if err := os.WriteFile(envs[k.Key.ID], []byte("PLANA_KEY="+k.Plain+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k.Key)
	}
	return w, ks, Options{Options: rotate.Options{QuietPeriod: time.Hour, PollInterval: 10 * time.Millisecond, Timeout: time.Minute, Yes: true,
		Policy: envRules(ks, envs)}, Parallel: 2}
}

// envRules gives each key of ks, by its name, the env file envs holds for
// its id.
func envRules(ks []client.APIKey, envs map[string]string) rotate.Policy {
	var p rotate.Policy
	for _, k := range ks {
		p.Rules = append(p.Rules, rotate.Rule{Match: k.Name, Targets: []string{"env-file:" + envs[k.ID]}})
	}
	return p
}
