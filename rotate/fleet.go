package rotate

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/plana-cli/plana/client"
)

// TargetRule is one entry of a profile's rotation.targets: the keys whose
// name matches Match (a glob) deploy to To, with their own cadence and quiet
// period when set.
type TargetRule struct {
	Match       string        `json:"match" yaml:"match"`
	To          []string      `json:"to" yaml:"to"`
	Cadence     time.Duration `json:"-" yaml:"-"`
	QuietPeriod time.Duration `json:"-" yaml:"-"`
}

// RuleFor is the first rule whose pattern matches name.
func RuleFor(rules []TargetRule, name string) (TargetRule, bool) {
	for _, r := range rules {
		if ok, _ := path.Match(r.Match, name); ok {
			return r, true
		}
	}
	return TargetRule{}, false
}

// CheckSharedTargets refuses one command-line target for many keys when it
// is an env file or stdout: every successor would overwrite the one
// PLANA_KEY_NEW, and all but the last automation would lose its key.
func CheckSharedTargets(targets []string, keys int) error {
	if keys < 2 {
		return nil
	}
	for _, s := range targets {
		t, err := ParseTarget(s)
		if err != nil {
			return err
		}
		if t.Kind == TargetEnvFile || t.Kind == TargetStdout {
			return fmt.Errorf("--to %s would receive the successors of %d keys, each overwriting the last: give each key its own target in the profile's rotation.targets (plana help config)", t, keys)
		}
	}
	return nil
}

// Fleet states of one key.
const (
	FleetDone     = "done"
	FleetPending  = "pending"
	FleetFailed   = "failed"
	FleetSkipped  = "skipped" // due, but no target is configured for it
	FleetPlanned  = "planned" // a dry run
	fleetNoTarget = "no target in rotation.targets"
)

// FleetItem is one key of a fleet run.
type FleetItem struct {
	Old     KeyRef   `json:"old"`
	Targets []string `json:"targets,omitempty"`
	State   string   `json:"state"`
	Result  *Result  `json:"result,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// FleetResult sums a fleet run up: one item per key, in the order given.
type FleetResult struct {
	Items   []FleetItem `json:"items"`
	Done    int         `json:"done"`
	Pending int         `json:"pending"`
	Failed  int         `json:"failed"`
	Skipped int         `json:"skipped"`
}

// Err is the run's outcome as an error: nil when every key with a target is
// done, ErrPending while any waits, an error when any failed. Skipped keys
// count for nothing: a key nobody gave a target is listed, not a failure.
func (f *FleetResult) Err() error {
	targeted := len(f.Items) - f.Skipped
	switch {
	case f.Failed > 0:
		return fmt.Errorf("%d of %d rotations failed; run the same command again to retry them", f.Failed, targeted)
	case f.Pending > 0:
		return fmt.Errorf("%w: %d of %d rotations wait on their gate; run the same command again to carry them on", ErrPending, f.Pending, targeted)
	}
	return nil
}

// FleetJob is one key to rotate, with its targets (none: skipped).
type FleetJob struct {
	Key     client.APIKey
	Targets []string
}

// Slots bound the work a fleet does at once. A rotation holds a slot while
// it creates, deploys, finalizes or revokes, and gives it back while it waits
// on its gate: waiting costs one shared read of the log per poll, so a
// hundred rotations wait together while --parallel of them work.
type Slots struct{ ch chan struct{} }

// NewSlots makes n slots (at least one).
func NewSlots(n int) *Slots { return &Slots{ch: make(chan struct{}, max(n, 1))} }

// Acquire takes a slot, or fails when ctx is done.
func (s *Slots) Acquire(ctx context.Context) error {
	if s == nil {
		return nil
	}
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives a slot back.
func (s *Slots) Release() {
	if s != nil {
		<-s.ch
	}
}

type slotsKey struct{}

// withSlots lets the rotation under ctx give its slot back while it waits.
func withSlots(ctx context.Context, s *Slots) context.Context {
	return context.WithValue(ctx, slotsKey{}, s)
}

// waitOutsideSlot runs wait with the caller's slot given back, when it runs
// under a fleet, and takes a slot again afterwards.
func waitOutsideSlot(ctx context.Context, wait func() error) error {
	s, _ := ctx.Value(slotsKey{}).(*Slots)
	if s == nil {
		return wait()
	}
	s.Release()
	err := wait()
	if aerr := s.Acquire(context.WithoutCancel(ctx)); aerr != nil && err == nil {
		err = aerr
	}
	return err
}

// RunFleet rotates each job with rotate, parallel at a time (see Slots), and
// sums the outcomes up. A job without a target is skipped; a failed job does
// not stop the others.
func RunFleet(ctx context.Context, jobs []FleetJob, parallel int, rotate func(ctx context.Context, job FleetJob) (*Result, error)) *FleetResult {
	res := &FleetResult{Items: make([]FleetItem, len(jobs))}
	slots := NewSlots(parallel)
	var wg sync.WaitGroup
	for i, job := range jobs {
		it := &res.Items[i]
		it.Old, it.Targets = RefOf(job.Key), job.Targets
		if len(job.Targets) == 0 {
			it.State, it.Error = FleetSkipped, fleetNoTarget
			continue
		}
		if err := slots.Acquire(ctx); err != nil {
			it.State, it.Error = FleetFailed, err.Error()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer slots.Release()
			out, err := rotate(withSlots(ctx, slots), job)
			it.Result = out
			switch {
			case err == nil && out != nil && out.DryRun:
				it.State = FleetPlanned
			case err == nil:
				it.State = FleetDone
			case errors.Is(err, ErrPending):
				it.State, it.Error = FleetPending, err.Error()
			default:
				it.State, it.Error = FleetFailed, client.Redact(err.Error())
			}
		}()
	}
	wg.Wait()
	for _, it := range res.Items {
		switch it.State {
		case FleetDone:
			res.Done++
		case FleetPending:
			res.Pending++
		case FleetFailed:
			res.Failed++
		case FleetSkipped:
			res.Skipped++
		}
	}
	return res
}
