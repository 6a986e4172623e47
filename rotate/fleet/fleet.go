// Package fleet runs many rotations at once (--due, --issued-by): which
// keys (IssuedBy, the overdue ones and the due dates behind them), each key's
// targets and quiet period from one Policy, and the runner. Every rotation
// has a goroutine of its own; a weighted semaphore lets --parallel of them
// talk to BOS at once, and a rotation gives its slot back while it waits.
// The rotations of a run share one read of the execution log per poll and
// one key listing at a time.
package fleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/ref"
)

// pageSize is the page size of the fleet's listings: the most the contract
// allows.
const pageSize = 1000

// Job is one key to rotate, with the targets its rotation settles on.
// Skip, when set, says why the key is listed and left alone.
type Job struct {
	Key     client.APIKey
	Targets []string
	Skip    string
}

// Options are a fleet run's: the options of each rotation (its flags and
// the profile's Policy, which give each key its settings) and how many
// rotations work at once.
type Options struct {
	rotate.Options
	// Parallel is how many rotations create, deploy, finalize or revoke at
	// once; 0: one.
	Parallel int
}

// State is how far one key of a fleet got.
type State string

// The states of a key.
const (
	Done    State = "done"
	Waiting State = "waiting" // the gate is not met yet
	Failed  State = "failed"
	Skipped State = "skipped" // due, but no target is configured for it
	Planned State = "planned" // a dry run
)

// Item is the outcome for one key of a fleet.
type Item struct {
	Old     ref.Key        `json:"old"`
	Targets []string       `json:"targets,omitempty"`
	Result  *rotate.Result `json:"result,omitempty"`
	State   State          `json:"state"`
	Error   string         `json:"error,omitempty"`
}

// Result sums a fleet up: one item per key, in the order given.
type Result struct {
	Items   []Item `json:"items"`
	Done    int    `json:"done"`
	Pending int    `json:"pending"`
	Failed  int    `json:"failed"`
	Skipped int    `json:"skipped,omitempty"`
	Planned int    `json:"planned,omitempty"`
}

// Err is the run's outcome as an error: nil when every key with a target is
// done, rotate.ErrPending while any waits, an error when any failed. Skipped
// keys count for nothing: a key nobody gave a target is listed, not a
// failure.
func (b *Result) Err() error {
	targeted := len(b.Items) - b.Skipped
	switch {
	case b.Failed > 0:
		return fmt.Errorf("%d of %d rotations failed; run the same command again to retry them", b.Failed, targeted)
	case b.Pending > 0:
		return fmt.Errorf("%w: %d of %d rotations wait on their gate; run the same command again to carry them on", rotate.ErrPending, b.Pending, targeted)
	}
	return nil
}

// waits runs a wait of one rotation with its slot given back (see
// rotate.Rotator.Waits).
type waits func(ctx context.Context, wait func(context.Context) error) error

// runJobs rotates each job with rot, parallel at a time, and sums the outcomes
// up; ended, when set, hears each job's outcome. Each job runs in a
// goroutine of its own and holds one of parallel slots while it works; rot
// passes waits on to the rotation, which gives the slot back while it
// waits. A job without a target is skipped; a failed job does not stop the
// others.
func runJobs(ctx context.Context, jobs []Job, parallel int, rot func(context.Context, Job, waits) (*rotate.Result, error),
	ended func(Job, *rotate.Result, error)) *Result {
	res := &Result{Items: make([]Item, len(jobs))}
	sem := semaphore.NewWeighted(int64(max(parallel, 1)))
	var g errgroup.Group
	for i, job := range jobs {
		it := &res.Items[i]
		it.Old, it.Targets = ref.Of(job.Key), job.Targets
		if job.Skip != "" {
			it.State, it.Error = Skipped, job.Skip
			continue
		}
		// In order: the first jobs given start first.
		if err := sem.Acquire(ctx, 1); err != nil {
			it.State, it.Error = Failed, err.Error()
			continue
		}
		g.Go(func() error {
			held := true
			waits := func(ctx context.Context, wait func(context.Context) error) error {
				sem.Release(1)
				held = false
				err := wait(ctx)
				if aerr := sem.Acquire(ctx, 1); aerr != nil {
					return cmp.Or(err, aerr)
				}
				held = true
				return err
			}
			out, err := rot(ctx, job, waits)
			if held {
				sem.Release(1)
			}
			it.record(out, err)
			if ended != nil {
				ended(job, out, err)
			}
			return nil
		})
	}
	_ = g.Wait() // no job fails the group: each outcome is its item's
	res.tally()
	return res
}

// tally counts the items by state.
func (b *Result) tally() {
	b.Done, b.Pending, b.Failed, b.Skipped, b.Planned = 0, 0, 0, 0, 0
	for _, it := range b.Items {
		switch it.State {
		case Done:
			b.Done++
		case Waiting:
			b.Pending++
		case Failed:
			b.Failed++
		case Skipped:
			b.Skipped++
		case Planned:
			b.Planned++
		}
	}
}

// record keeps a rotation's outcome.
func (it *Item) record(out *rotate.Result, err error) {
	it.Result = out
	switch {
	case err == nil && out != nil && out.DryRun:
		it.State = Planned
	case err == nil:
		it.State = Done
	case errors.Is(err, rotate.ErrPending):
		it.State, it.Error = Waiting, err.Error()
	default:
		it.State, it.Error = Failed, client.Redact(err.Error())
	}
}

// Rotate rotates keys, o.Parallel at a time (default 1), each with the
// settings its rotation settles on (rotate.Rotator.Settings). Rotations
// waiting on their gate share one read of the execution log per poll. A
// failed key does not stop the others; the error is the result's
// (Result.Err). A flag that differs from what a rotation under way recorded
// refuses the whole run before any key is touched.
func Rotate(ctx context.Context, r *rotate.Rotator, keys []client.APIKey, o Options) (*Result, error) {
	run, err := start(ctx, r)
	if err != nil {
		return nil, err
	}
	return run.rotate(ctx, keys, o)
}

// rotate is Rotate, on what run read.
func (run *fleetRun) rotate(ctx context.Context, keys []client.APIKey, o Options) (*Result, error) {
	jobs, err := plan(run.r, keys, o.Options)
	if err != nil {
		return nil, err
	}
	return run.rotateJobs(ctx, jobs, o)
}

// rotateJobs is Rotate of the jobs plan gave.
func (run *fleetRun) rotateJobs(ctx context.Context, jobs []Job, o Options) (*Result, error) {
	r := run.r
	// Every key polls at the run's interval: no rule sets one of its own.
	interval := cmp.Or(o.Policy.Resolve("", o.Flags()).PollInterval, rotate.DefaultPollInterval)
	feedCtx, stopFeed := context.WithCancel(ctx)
	listings := newListings(feedCtx, r.API, run.keys, run.listed)
	// A listing begun before a create or a revoke of this run is out of
	// date for the keys' state.
	var changed atomic.Int64
	feed := gate.NewFeed(r.API, interval)
	feed.Keys = func(ctx context.Context, since time.Time) ([]client.APIKey, error) {
		if c := time.Unix(0, changed.Load()); c.After(since) {
			since = c
		}
		return listings.since(ctx, since)
	}
	// Every rotation works toward its gate until it waits or ends: the
	// feed's reads wait for them all, so that they share one.
	for _, j := range jobs {
		if j.Skip == "" {
			feed.Hold()
		}
	}
	var feedDone sync.WaitGroup
	feedDone.Add(1)
	go func() { defer feedDone.Done(); feed.Run(feedCtx) }()
	defer func() { stopFeed(); feedDone.Wait() }()

	var mu sync.Mutex
	var started int
	rep := reporter(r)
	secrets := &serialStore{Store: r.Secrets}
	var proven atomic.Bool
	probe := func() error {
		// One probe proves the keyring for the run: a later failure to
		// store is still caught by the create, which revokes that key.
		if proven.Load() {
			return nil
		}
		if err := secret.Probe(secrets); err != nil {
			return err
		}
		proven.Store(true)
		return nil
	}
	res := runJobs(ctx, jobs, o.Parallel, func(ctx context.Context, job Job, waits waits) (*rotate.Result, error) {
		rj := *r
		rj.Feed, rj.Keys, rj.Secrets, rj.Probe = feed, listings.since, secrets, probe
		defer feed.Release()
		rj.Waits = func(ctx context.Context, wait func(context.Context) error) error {
			feed.Release()
			defer feed.Hold()
			return waits(ctx, wait)
		}
		rj.Changed = func() { changed.Store(time.Now().UnixNano()) }
		rj.Reporter = &keyReporter{mu: &mu, inner: rep, prefix: job.Key.Prefix + ": "}
		mu.Lock()
		started++
		rep.Step(fmt.Sprintf("[%d/%d] %s (%s)", started, len(jobs), job.Key.Name, job.Key.Prefix))
		mu.Unlock()
		return rj.Rotate(ctx, job.Key, o.Options)
	}, func(job Job, _ *rotate.Result, err error) {
		if err != nil && !errors.Is(err, rotate.ErrPending) {
			(&keyReporter{mu: &mu, inner: rep, prefix: job.Key.Prefix + ": "}).Warn(client.Redact(err.Error()))
		}
	})
	if err := ctx.Err(); err != nil {
		// Ctrl-C: every rotation stopped where it was, its journal saved.
		return res, fmt.Errorf("stopped (%w): every rotation is saved where it stopped; run the same command again to carry them on", err)
	}
	return res, res.Err()
}

// plan is a job per key, with the targets its rotation settles on; a key
// without any is skipped, unless in an emergency, which revokes first, or
// already revoked by one under way, which has nothing left to deploy.
func plan(r *rotate.Rotator, keys []client.APIKey, o rotate.Options) ([]Job, error) {
	jobs := make([]Job, len(keys))
	var refused []string
	for i, k := range keys {
		set, err := r.Settings(k, o)
		if errors.Is(err, rotate.ErrUsage) {
			refused = append(refused, fmt.Sprintf("%s (%s): %v", k.Name, k.Prefix, err))
			continue
		}
		// Any other error is the rotation's own (a damaged journal): it
		// fails there, saying what to do.
		jobs[i] = Job{Key: k, Targets: set.Targets}
		if err == nil && len(set.Targets) == 0 && o.Emergency == "" && k.Active() {
			jobs[i].Skip = "no target in rotation.targets"
		}
	}
	if len(refused) > 0 {
		return nil, &rotate.UsageError{Msg: "nothing was done:\n  " + strings.Join(refused, "\n  ")}
	}
	return jobs, nil
}
