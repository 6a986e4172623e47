package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plana-cli/plana/client"
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
	res := RunFleet(ctx, jobs, parallel, func(ctx context.Context, job FleetJob) (*Result, error) {
		work()
		err := waitOutsideSlot(ctx, func() error {
			// Every rotation reaches its gate before any passes: only
			// possible if waiting gives the slot back.
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
		return &Result{}, nil
	})
	if res.Done != n || res.Err() != nil {
		t.Fatalf("done %d of %d: %v (%+v)", res.Done, n, res.Err(), res.Items)
	}
	if p := peak.Load(); p > parallel {
		t.Errorf("%d rotations worked at once, --parallel %d", p, parallel)
	}
}

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
		})
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
