package rotate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
)

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
			return usageErrorf("--to %s would receive the successors of %d keys: every successor would overwrite the last; nothing was done. "+
				"Give each key its own target in the profile's rotation.targets (plana help config), or rotate the keys one at a time: plana keys rotate KEY --to %s", t, keys, t)
		}
	}
	return nil
}

// States of one key of a bulk run.
const (
	BulkDone    = "done"
	BulkWaiting = "waiting" // the gate is not met yet
	BulkFailed  = "failed"
	BulkSkipped = "skipped" // due, but no target is configured for it
	BulkPlanned = "planned" // a dry run
)

// BulkItem is the outcome for one key of a bulk run.
type BulkItem struct {
	Old     KeyRef   `json:"old"`
	Targets []string `json:"targets,omitempty"`
	Result  *Result  `json:"result,omitempty"`
	State   string   `json:"state"`
	Error   string   `json:"error,omitempty"`
}

// BulkResult sums a bulk run up: one item per key, in the order given.
type BulkResult struct {
	Items   []BulkItem `json:"items"`
	Done    int        `json:"done"`
	Pending int        `json:"pending"`
	Failed  int        `json:"failed"`
	Skipped int        `json:"skipped,omitempty"`
	Planned int        `json:"planned,omitempty"`
}

// Err is the run's outcome as an error: nil when every key with a target is
// done, ErrPending while any waits, an error when any failed. Skipped keys
// count for nothing: a key nobody gave a target is listed, not a failure.
func (b *BulkResult) Err() error {
	targeted := len(b.Items) - b.Skipped
	switch {
	case b.Failed > 0:
		return fmt.Errorf("%d of %d rotations failed; run the same command again to retry them", b.Failed, targeted)
	case b.Pending > 0:
		return fmt.Errorf("%w: %d of %d rotations wait on their gate; run the same command again to carry them on", ErrPending, b.Pending, targeted)
	}
	return nil
}

// FleetJob is one key to rotate, with its targets and its quiet period (0:
// the options'). Skip, when set, says why the key is listed and left alone.
type FleetJob struct {
	Key         client.APIKey
	Targets     []string
	QuietPeriod time.Duration
	Skip        string
}

// Slots bound the work a fleet does at once. A rotation holds a slot while
// it creates, deploys, finalizes or revokes, and gives it back while it waits
// after its create or on its gate (parkedError.await): waiting costs one
// shared read of the log per poll, so a hundred rotations wait together
// while --parallel of them work.
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

// RunFleet rotates each job with rotate, parallel at a time (see Slots), and
// sums the outcomes up; ended, when set, hears each job's outcome. A job
// without a target is skipped; a failed job does not stop the others. A
// rotation that parks at a wait (a *parkedError: after its create, at its
// gate) is waited for without a goroutine of its own.
func RunFleet(ctx context.Context, jobs []FleetJob, parallel int, rotate func(ctx context.Context, job FleetJob) (*Result, error),
	ended func(job FleetJob, out *Result, err error)) *BulkResult {
	res := &BulkResult{Items: make([]BulkItem, len(jobs))}
	slots := NewSlots(parallel)
	var wg sync.WaitGroup
	for i, job := range jobs {
		it := &res.Items[i]
		it.Old, it.Targets = RefOf(job.Key), job.Targets
		if job.Skip != "" {
			it.State, it.Error = BulkSkipped, job.Skip
			continue
		}
		if err := slots.Acquire(ctx); err != nil {
			it.State, it.Error = BulkFailed, err.Error()
			continue
		}
		wg.Add(1)
		var finish func(out *Result, err error)
		finish = func(out *Result, err error) {
			if p, ok := errors.AsType[*parkedError](err); ok {
				p.await(ctx, slots, finish)
				return
			}
			defer wg.Done()
			defer slots.Release()
			it.Result = out
			switch {
			case err == nil && out != nil && out.DryRun:
				it.State = BulkPlanned
			case err == nil:
				it.State = BulkDone
			case errors.Is(err, ErrPending):
				it.State, it.Error = BulkWaiting, err.Error()
			default:
				it.State, it.Error = BulkFailed, client.Redact(err.Error())
			}
			if ended != nil {
				ended(job, out, err)
			}
		}
		go func() { finish(rotate(ctx, job)) }()
	}
	wg.Wait()
	for _, it := range res.Items {
		switch it.State {
		case BulkDone:
			res.Done++
		case BulkWaiting:
			res.Pending++
		case BulkFailed:
			res.Failed++
		case BulkSkipped:
			res.Skipped++
		case BulkPlanned:
			res.Planned++
		}
	}
	return res
}

// RotateFleet rotates keys, opts.Parallel at a time (default 1), each with
// the targets and quiet period opts.Policy gives it (default: the options'
// own). Rotations waiting on their gate share one read of the execution log
// per poll. A failed key does not stop the others; the error is the
// result's (BulkResult.Err).
func (r *Rotator) RotateFleet(ctx context.Context, keys []client.APIKey, opts Options) (*BulkResult, error) {
	jobs := make([]FleetJob, len(keys))
	for i, k := range keys {
		if opts.Policy != nil {
			jobs[i] = opts.Policy(k)
		} else {
			jobs[i] = FleetJob{Key: k, Targets: optsTargets(opts)}
		}
		jobs[i].Key = k
	}
	interval := opts.PollInterval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	feed := NewLogFeed(r.API, interval)
	feedCtx, stopFeed := context.WithCancel(ctx)
	listings := NewListings(feedCtx, r.API)
	var feedDone sync.WaitGroup
	feedDone.Add(1)
	go func() { defer feedDone.Done(); feed.Run(feedCtx) }()
	defer func() { stopFeed(); feedDone.Wait() }()

	var mu sync.Mutex
	var started int
	secrets := &serialStore{Store: r.Secrets}
	proven := new(atomic.Bool)
	res := RunFleet(ctx, jobs, opts.Parallel, func(ctx context.Context, job FleetJob) (*Result, error) {
		rj := *r
		rj.Feed, rj.Listings = feed, listings
		rj.Secrets, rj.keyringProven = secrets, proven
		rj.parkWaits = true
		rj.Reporter = &keyReporter{mu: &mu, inner: r.rep(), prefix: job.Key.Prefix + ": "}
		mu.Lock()
		started++
		r.rep().Step(fmt.Sprintf("[%d/%d] %s (%s)", started, len(jobs), job.Key.Name, job.Key.Prefix))
		mu.Unlock()
		o := opts
		o.Target, o.Targets = "", job.Targets
		if job.QuietPeriod > 0 && opts.QuietPeriod == 0 {
			o.QuietPeriod = job.QuietPeriod
		}
		return rj.Rotate(ctx, job.Key, o)
	}, func(job FleetJob, _ *Result, err error) {
		if err != nil && !errors.Is(err, ErrPending) {
			(&keyReporter{mu: &mu, inner: r.rep(), prefix: job.Key.Prefix + ": "}).Warn(client.Redact(err.Error()))
		}
	})
	return res, res.Err()
}

// keyReporter tells one key's progress in a bulk run: its lines prefixed
// with the key, one writer at a time.
type keyReporter struct {
	mu     *sync.Mutex
	inner  Reporter
	prefix string
}

func (k *keyReporter) do(f func(Reporter, string), s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f(k.inner, k.prefix+s)
}

func (k *keyReporter) Step(s string)    { k.do(Reporter.Info, s) }
func (k *keyReporter) Waiting(s string) { k.do(Reporter.Waiting, s) }
func (k *keyReporter) Info(s string)    { k.do(Reporter.Info, s) }
func (k *keyReporter) Warn(s string)    { k.do(Reporter.Warn, s) }

// GateChecked passes each gate evaluation on to a reporter that follows
// them (a spinner's text, a test's clock).
func (k *keyReporter) GateChecked(rep GateReport) {
	if gw, ok := k.inner.(GateWatcher); ok {
		k.mu.Lock()
		defer k.mu.Unlock()
		gw.GateChecked(rep)
	}
}

// serialStore lets one call at a time reach the keyring: the Secret Service
// client (zalando/go-keyring over godbus) failed, and once panicked, under
// a bulk run's concurrent calls; one at a time costs a few milliseconds.
type serialStore struct {
	mu sync.Mutex
	secret.Store
}

func (s *serialStore) Get(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Store.Get(name)
}

func (s *serialStore) Set(name, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Store.Set(name, value)
}

func (s *serialStore) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Store.Delete(name)
}
