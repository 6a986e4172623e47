// Package rotate carries out the five-step rotation of a BOS API key without
// downtime (create, deploy alongside, verify, remove, revoke), resumable at
// every step from what the server says plus a local journal, and keeps the
// rotation log.
package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/internal/secret"
)

// GateWatcher is a Reporter that also wants each evaluation of the gate
// while it waits, to draw the traffic moving from the old key to the new.
type GateWatcher interface {
	GateChecked(GateReport)
}

// Reporter shows progress: a spinner on a TTY, one line per change otherwise.
type Reporter interface {
	Step(name string)    // a step begins
	Waiting(text string) // what a wait is waiting for, a whole line; called again when it changes
	Info(text string)
	Warn(text string)
}

type nopReporter struct{}

func (nopReporter) Step(string)    {}
func (nopReporter) Waiting(string) {}
func (nopReporter) Info(string)    {}
func (nopReporter) Warn(string)    {}

// Rotator runs rotations. API is the client for the management key;
// ClientFor builds a client presenting other keys (the new one, to check it
// answers; the old one, to check it is refused after the revoke).
type Rotator struct {
	API        *client.Client
	ClientFor  func(keys ...string) (*client.Client, error)
	Secrets    secret.Store
	StateDir   string
	Reporter   Reporter
	LocalActor string // user@host; found from the OS when empty

	// hook, when set, is called at named points of the procedure; an error
	// stops the run there, as a crash would (tests only).
	hook func(point string) error
}

// Options are the choices of one run.
type Options struct {
	Target       string        // deploy target: env-file:PATH, exec:CMD, stdout, or "" to deploy by hand
	QuietPeriod  time.Duration // 0: keep the journal's, else suggest one from the old key's cadence
	PollInterval time.Duration // 0: 30s
	Timeout      time.Duration // how long step 3 waits; 0: no limit but ctx
	ExecTimeout  time.Duration // for exec: targets; 0: 2m
	NoWait       bool          // evaluate the gate once
	Yes          bool          // step 4 confirmed in advance
	DryRun       bool
	Force        bool // revoke even though the gate does not hold
	Finalize     bool // Deploy: step 4, leave only the new key
	PrintSecret  bool // hand the new plaintext once to SecretOut
	// Emergency is the reason for an emergency rotation (compromise,
	// departed, lost-device or free text): the old key is revoked right
	// after the new one exists, before any deploy.
	Emergency string
	Reason    string // the reason of a planned rotation; default "scheduled"
	// Confirm asks the human (step 4); nil when nobody can be asked.
	Confirm   func(prompt string) (bool, error)
	SecretOut io.Writer // where stdout targets and --print-secret write
}

const (
	defaultPollInterval = 30 * time.Second
	checkNewTimeout     = 30 * time.Second
	checkRevokedTimeout = 5 * time.Second
)

// Result says how far a rotation got.
type Result struct {
	Old         KeyRef        `json:"old"`
	New         *KeyRef       `json:"new,omitempty"`
	Step        Step          `json:"step"`
	Done        bool          `json:"done"`
	Emergency   bool          `json:"emergency"`
	Reason      string        `json:"reason"`
	Target      string        `json:"target,omitempty"`
	QuietPeriod duration.JSON `json:"quiet_period,omitempty"`
	Gate        *GateReport   `json:"gate,omitempty"`
	DryRun      bool          `json:"dry_run,omitempty"`
	Plan        []string      `json:"plan,omitempty"`
	Journal     string        `json:"journal,omitempty"`
}

// run is one locked session on one key's rotation.
type run struct {
	r         *Rotator
	opts      Options
	js        journals
	j         *Journal
	lock      *flock.Flock
	old       client.APIKey
	actor     Actor
	plaintext string // the new key's, when created by this run
	keyless   bool   // no keyring: the plaintext lives only in this run
	res       *Result
}

func (r *Rotator) rep() Reporter {
	if r.Reporter == nil {
		return nopReporter{}
	}
	return r.Reporter
}

func (r *Rotator) journals() journals { return journals{dir: filepath.Join(r.StateDir, "rotations")} }

func (r *Rotator) localActor() string {
	if r.LocalActor != "" {
		return r.LocalActor
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func (r *Rotator) at(point string) error {
	if r.hook == nil {
		return nil
	}
	return r.hook(point)
}

// begin locks key's rotation and loads its journal. key may be the old key
// or the successor of a rotation under way.
func (r *Rotator) begin(ctx context.Context, key client.APIKey, opts Options) (*run, error) {
	if r.API == nil || r.StateDir == "" {
		return nil, errors.New("rotate: Rotator needs API and StateDir")
	}
	if err := checkID(key.ID); err != nil {
		return nil, err
	}
	if opts.Emergency != "" && opts.Reason == "" {
		opts.Reason = opts.Emergency
	}
	if opts.Reason == "" {
		opts.Reason = ReasonScheduled
	}
	x := &run{r: r, opts: opts, js: r.journals(), old: key}
	if id := x.js.rotationOf(key.ID); id != "" {
		old, err := r.API.GetKey(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading the key being rotated: %w", err)
		}
		x.old = *old
	}
	if !opts.DryRun {
		lk, err := x.js.lock(x.old.ID)
		if err != nil {
			return nil, err
		}
		x.lock = lk
	}
	j, err := x.js.load(x.old.ID)
	if err != nil {
		x.end()
		return nil, err
	}
	me, err := r.API.Me(ctx)
	if err != nil {
		x.end()
		return nil, fmt.Errorf("checking the management key: %w", err)
	}
	x.actor = Actor{Email: me.User.Email, Local: r.localActor()}
	if j == nil {
		now := x.now()
		j = &Journal{Old: RefOf(x.old), OldCreatedBy: x.old.CreatedBy.Email, Reason: opts.Reason,
			Emergency: opts.Emergency != "", Actor: x.actor, StartedAt: now, UpdatedAt: now, Target: opts.Target}
	} else if opts.Emergency != "" && !j.Emergency {
		// An emergency overrides a planned rotation already under way.
		j.Emergency, j.Reason = true, opts.Reason
	}
	x.j = j
	x.res = &Result{Old: j.Old, DryRun: opts.DryRun, Journal: x.js.path(j.Old.ID)}
	return x, nil
}

func (x *run) end() {
	if x.lock != nil {
		x.lock.Unlock()
		x.lock = nil
	}
}

// now is the server's time: the gate and every timestamp use it, never the
// local clock.
func (x *run) now() time.Time {
	if t, ok := x.r.API.ServerNow(); ok {
		return t.UTC()
	}
	return time.Now().UTC()
}

func (x *run) save() error {
	if x.opts.DryRun {
		return nil
	}
	x.j.UpdatedAt = x.now()
	return x.js.save(x.j)
}

func (x *run) log(event, detail string) {
	if x.opts.DryRun {
		return
	}
	e := LogEntry{Time: x.now(), Event: event, Old: x.j.Old, New: x.j.New, Reason: x.j.Reason, Actor: x.actor, Detail: detail}
	if _, err := OpenLog(x.r.StateDir).Append(e); err != nil {
		x.r.rep().Warn("could not append to the rotation log: " + err.Error())
	}
}

func (x *run) result() *Result {
	res := x.res
	res.New, res.Step, res.Done = x.j.New, x.j.Step, x.j.Step == StepDone
	res.Emergency, res.Reason, res.Target = x.j.Emergency, x.j.Reason, x.j.Target
	res.QuietPeriod = duration.JSON(x.j.quiet())
	return res
}

// Rotate runs the whole procedure as far as it can, resuming a rotation
// under way. It stops with a *GateError (ErrPending) while the gate of step
// 3 does not hold, and with ErrPending when step 4 is declined.
func (r *Rotator) Rotate(ctx context.Context, old client.APIKey, opts Options) (*Result, error) {
	x, err := r.begin(ctx, old, opts)
	if err != nil {
		return nil, err
	}
	defer x.end()
	if opts.DryRun {
		return x.plan(ctx)
	}
	if x.j.Step == StepNone && !x.old.Active() {
		return nil, fmt.Errorf("key %s (%s) is already revoked: nothing to rotate; a revoked key cannot be re-enabled, issue a new one with plana keys create --like %s", x.old.Name, x.old.Prefix, x.old.ID)
	}
	if err := x.checkTarget(); err != nil {
		return nil, err
	}
	steps := []func(context.Context) error{x.ensureCreated, x.ensureChecked}
	if x.j.Emergency {
		steps = append(steps, x.revokeNow, x.ensureDeployed, x.ensureVerified, x.finishEmergency)
	} else {
		steps = append(steps, x.ensureDeployed, x.ensureVerified, x.ensureFinalized, x.ensureRevoked)
	}
	return x.runSteps(ctx, steps...)
}

// runSteps runs steps in order, stopping at the first error; the result says
// how far they got either way.
func (x *run) runSteps(ctx context.Context, steps ...func(context.Context) error) (*Result, error) {
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return x.result(), err
		}
	}
	return x.result(), nil
}

// Create is step 1 alone (plana keys create --like): the new key, stored,
// and checked to answer.
func (r *Rotator) Create(ctx context.Context, old client.APIKey, opts Options) (*Result, error) {
	x, err := r.begin(ctx, old, opts)
	if err != nil {
		return nil, err
	}
	defer x.end()
	if opts.DryRun {
		return x.plan(ctx)
	}
	if x.j.Step == StepNone && !x.old.Active() {
		return nil, fmt.Errorf("key %s is revoked: create a new key from the BOS settings or plana keys create --like an active key", x.old.Prefix)
	}
	return x.runSteps(ctx, x.ensureCreated, x.ensureChecked)
}

// Deploy is step 2 (and step 4 with Finalize) of the rotation of key, which
// may name the old key or its successor.
func (r *Rotator) Deploy(ctx context.Context, key client.APIKey, opts Options) (*Result, error) {
	x, err := r.begin(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	defer x.end()
	if err := x.needNew(); err != nil {
		return nil, err
	}
	if opts.Target == "" && x.j.Target == "" {
		return nil, errors.New("no deploy target: pass --to env-file:PATH, --to exec:CMD or --to stdout")
	}
	if err := x.checkTarget(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return x.plan(ctx)
	}
	steps := []func(context.Context) error{x.ensureChecked, x.ensureDeployed}
	if opts.Finalize {
		steps = append(steps, x.finalize)
	}
	return x.runSteps(ctx, steps...)
}

// Verify is step 3: it evaluates the gate, waiting for it unless NoWait.
func (r *Rotator) Verify(ctx context.Context, key client.APIKey, opts Options) (*Result, error) {
	x, err := r.begin(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	defer x.end()
	if x.j.New == nil {
		// No rotation under way: only the old key's silence can be checked.
		q, err := x.quietPeriod(ctx)
		if err != nil {
			return nil, err
		}
		rep, err := x.waitGate(ctx, newGate(x.r.API, x.j, q, true))
		x.res.Gate = &rep
		return x.result(), err
	}
	return x.result(), x.ensureVerified(ctx)
}

// Revoke is step 5: refused while the gate does not hold unless Force.
func (r *Rotator) Revoke(ctx context.Context, key client.APIKey, opts Options) (*Result, error) {
	x, err := r.begin(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	defer x.end()
	if opts.DryRun {
		return x.plan(ctx)
	}
	return x.runSteps(ctx, x.ensureRevoked)
}

// checkTarget refuses, before step 1 creates anything, a deploy target that
// step 2 or 4 would fail on: an env file that is missing, a symlink, or not
// writable.
func (x *run) checkTarget() error {
	target := x.opts.Target
	if target == "" {
		target = x.j.Target
	}
	t, err := ParseTarget(target)
	if err != nil || t.Kind != TargetEnvFile || x.j.Step.Reached(StepFinalized) {
		return err
	}
	_, err = EnvFile{Path: t.Arg}.read()
	return err
}

func (x *run) needNew() error {
	if x.j.New == nil {
		return fmt.Errorf("no rotation of %s is under way: start one with plana keys rotate %s (or plana keys create --like %s)", x.old.Prefix, x.old.ID, x.old.ID)
	}
	return nil
}

// ensureCreated is step 1. Every path through it leaves at most one live
// successor: a successor whose plaintext is lost is revoked before another
// is created.
func (x *run) ensureCreated(ctx context.Context) error {
	j := x.j
	if j.New != nil {
		if x.plaintext != "" || j.PlaintextStored || j.Deployed {
			if j.PlaintextStored && !j.Deployed {
				if _, err := x.r.Secrets.Get(secret.KeyName(j.New.ID)); err != nil {
					if !errors.Is(err, secret.ErrNotFound) {
						return fmt.Errorf("reading the new key from the keyring: %w", err)
					}
					x.r.rep().Warn(fmt.Sprintf("the plaintext of the new key %s is gone from the keyring; revoking it and issuing another", j.New.Prefix))
					return x.abandonAndRecreate(ctx, *j.New)
				}
			}
			return nil
		}
		// Created by an earlier run without a keyring that stopped before
		// deploying: the plaintext died with it.
		x.r.rep().Warn(fmt.Sprintf("the plaintext of the new key %s was lost with the run that created it; revoking it and issuing another", j.New.Prefix))
		return x.abandonAndRecreate(ctx, *j.New)
	}
	x.r.rep().Step("Step 1: create the new key")
	if j.Pending != nil && x.now().Sub(j.Pending.At) > replayWindow {
		return x.recoverExpiredCreate(ctx)
	}
	if j.Pending != nil {
		ck, err := x.r.API.CreateKey(ctx, client.CreateKeyRequest{Name: j.Pending.Name, Scopes: j.Pending.Scopes, Description: j.Pending.Description}, j.Pending.IdempotencyKey)
		if err != nil {
			return fmt.Errorf("recovering the answer of an earlier create: %w", err)
		}
		if ck.Replayed {
			x.r.rep().Warn(fmt.Sprintf("an earlier run created %s but its answer was lost, and with it the plaintext; revoking it", ck.APIKey.Prefix))
			return x.abandonAndRecreate(ctx, RefOf(ck.APIKey))
		}
		// The first attempt never reached the server: this one is fresh.
		return x.stored(ctx, ck)
	}
	if err := x.probe(); err != nil {
		return err
	}
	return x.create(ctx)
}

// replayWindow is how long after a create its Idempotency-Key still
// replays the answer: the server keeps it 24 h; the margin covers a create
// sent just before a journal's timestamp was taken.
const replayWindow = 23 * time.Hour

// recoverExpiredCreate resumes a create whose answer was lost longer ago
// than the server remembers its Idempotency-Key: replaying it would make a
// second key. A key the lost create made has the planned name, was issued by
// this caller after the journal's timestamp, and its plaintext is gone, so it
// is revoked; then a fresh create follows.
func (x *run) recoverExpiredCreate(ctx context.Context) error {
	p := x.j.Pending
	x.r.rep().Warn(fmt.Sprintf("an earlier create of %q (%s ago) is too old for the server to replay; looking for the key it may have made", p.Name, x.now().Sub(p.At).Round(time.Minute)))
	keys, err := x.r.API.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusActive, PageSize: logPageSize})
	if err != nil {
		return fmt.Errorf("looking for the key of an earlier create: %w", err)
	}
	for _, k := range keys {
		if k.Name != p.Name || !strings.EqualFold(k.CreatedBy.Email, x.actor.Email) || k.CreatedAt.Before(p.At.Add(-time.Minute)) {
			continue
		}
		ref := RefOf(k)
		if _, err := x.r.API.RevokeKey(ctx, k.ID); err != nil {
			return fmt.Errorf("revoking %s, made by an earlier create whose answer was lost: %w", k.Prefix, err)
		}
		x.j.Abandoned = append(x.j.Abandoned, ref)
		x.logAbandoned(ref, "plaintext lost, create too old to replay")
		x.r.rep().Warn(fmt.Sprintf("revoked %s: an earlier run created it but lost its answer, and with it the plaintext", k.Prefix))
	}
	x.j.Pending, x.j.Step = nil, StepNone
	if err := x.save(); err != nil {
		return err
	}
	if err := x.probe(); err != nil {
		return err
	}
	return x.create(ctx)
}

func (x *run) probe() error {
	if err := secret.Probe(x.r.Secrets); err != nil {
		if x.opts.Target == "" && !x.opts.PrintSecret {
			return fmt.Errorf("%w (%v)", ErrNoKeyring, err)
		}
		x.keyless = true
		x.r.rep().Warn("no working keyring (" + err.Error() + "): the new key's plaintext goes only to the deploy target or stdout, and is lost if this run stops before")
	}
	return nil
}

func (x *run) create(ctx context.Context) error {
	j := x.j
	name, err := x.successorName(ctx)
	if err != nil {
		return err
	}
	j.Pending = &PendingCreate{IdempotencyKey: client.NewIdempotencyKey(), Name: name, Scopes: x.old.Scopes, Description: x.old.Description, At: x.now()}
	j.advance(StepStarted, x.now())
	// The idempotency key is on disk before the request leaves, so an answer
	// lost to a crash can be found again.
	if err := x.save(); err != nil {
		return err
	}
	ck, err := x.r.API.CreateKey(ctx, client.CreateKeyRequest{Name: name, Scopes: x.old.Scopes, Description: x.old.Description}, j.Pending.IdempotencyKey)
	if err != nil {
		return fmt.Errorf("creating the new key: %w (run the same command again: the create is recovered, never duplicated)", err)
	}
	if err := x.r.at("create-answered"); err != nil {
		return err
	}
	if ck.Replayed {
		return x.abandonAndRecreate(ctx, RefOf(ck.APIKey))
	}
	return x.stored(ctx, ck)
}

func (x *run) successorName(ctx context.Context) (string, error) {
	all, err := x.r.API.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: 1000})
	if err != nil {
		return "", fmt.Errorf("listing keys to name the new one: %w", err)
	}
	taken := map[string]bool{}
	for _, k := range all {
		taken[k.Name] = true
	}
	return SuccessorName(x.old.Name, x.now().Year(), func(s string) bool { return taken[s] }), nil
}

// stored puts a fresh plaintext in the keyring; a key whose plaintext cannot
// be stored is revoked at once.
func (x *run) stored(ctx context.Context, ck *client.CreatedKey) error {
	j := x.j
	ref := RefOf(ck.APIKey)
	if !x.keyless {
		if err := x.r.Secrets.Set(secret.KeyName(ck.APIKey.ID), ck.Plaintext); err != nil {
			_, rerr := x.r.API.RevokeKey(ctx, ck.APIKey.ID)
			j.Pending = nil
			if rerr == nil {
				j.Abandoned = append(j.Abandoned, ref)
				j.Step = StepNone
				x.logAbandoned(ref, "plaintext could not be stored in the keyring")
			}
			if serr := x.save(); serr != nil {
				return serr
			}
			if rerr != nil {
				return fmt.Errorf("storing the new key %s in the keyring failed (%v), and revoking it failed too (%v): revoke it now with plana keys revoke %s --force", ref.Prefix, err, rerr, ref.ID)
			}
			return fmt.Errorf("storing the new key %s in the keyring failed: %w; the key was revoked at once, nothing is left behind", ref.Prefix, err)
		}
	}
	x.plaintext = ck.Plaintext
	j.Pending, j.New, j.NewCreatedAt, j.PlaintextStored = nil, &ref, ck.APIKey.CreatedAt, !x.keyless
	j.advance(StepCreated, x.now())
	if err := x.save(); err != nil {
		return err
	}
	x.log(EventCreated, "")
	x.r.rep().Info(fmt.Sprintf("created %s (%s)", ref.Name, ref.Prefix))
	if x.opts.PrintSecret && x.opts.SecretOut != nil {
		if _, err := fmt.Fprintln(x.opts.SecretOut, ck.Plaintext); err != nil {
			return err
		}
	}
	return x.r.at("created")
}

func (x *run) logAbandoned(ref KeyRef, why string) {
	saved := x.j.New
	x.j.New = &ref
	x.log(EventAbandoned, why)
	x.j.New = saved
}

// abandonAndRecreate revokes a successor whose plaintext is lost, then
// creates another with a fresh idempotency key.
func (x *run) abandonAndRecreate(ctx context.Context, ref KeyRef) error {
	j := x.j
	if _, err := x.r.API.RevokeKey(ctx, ref.ID); err != nil {
		return fmt.Errorf("revoking %s, whose plaintext was lost: %w", ref.Prefix, err)
	}
	if err := x.r.Secrets.Delete(secret.KeyName(ref.ID)); err != nil && !errors.Is(err, secret.ErrNotFound) && !x.keyless {
		x.r.rep().Warn("could not delete the abandoned key from the keyring: " + err.Error())
	}
	j.Abandoned = append(j.Abandoned, ref)
	j.Pending, j.New, j.PlaintextStored, j.Deployed, j.OwnCalls = nil, nil, false, false, nil
	j.Step = StepNone
	if err := x.save(); err != nil {
		return err
	}
	x.logAbandoned(ref, "plaintext lost")
	if err := x.probe(); err != nil {
		return err
	}
	return x.create(ctx)
}

// newPlaintext is the new key's plaintext, from this run or the keyring.
func (x *run) newPlaintext(ctx context.Context) (string, error) {
	if x.plaintext != "" {
		return x.plaintext, nil
	}
	if !x.j.PlaintextStored {
		return "", fmt.Errorf("the plaintext of the new key %s is not in the keyring (it was handed out once when created); deploy it by hand", x.j.New.Prefix)
	}
	p, err := x.r.Secrets.Get(secret.KeyName(x.j.New.ID))
	if errors.Is(err, secret.ErrNotFound) {
		return x.recoverPlaintext(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("reading the new key %s from the keyring: %w", x.j.New.Prefix, err)
	}
	return p, nil
}

// recoverPlaintext finds the new key's plaintext, deleted from the keyring
// behind plana's back, in the env file it was deployed to, and stores it
// again. Only a value that BOS confirms is the new key is taken.
func (x *run) recoverPlaintext(ctx context.Context) (string, error) {
	j := x.j
	t, _ := ParseTarget(j.Target)
	lost := fmt.Errorf("the plaintext of the new key %s is gone from the keyring (deleted outside plana?)", j.New.Prefix)
	switch {
	case !j.Deployed:
		return "", fmt.Errorf("%w; nobody has it yet, so run plana keys rotate %s: it revokes that key and issues another", lost, j.Old.ID)
	case t.Kind == TargetNone:
		return "", fmt.Errorf("%w; it is still where you deployed it by hand: finish the rotation there, or start over: plana keys rotate %s --rebuild, then plana keys rotate %s",
			lost, j.Old.ID, j.Old.ID)
	case t.Kind != TargetEnvFile:
		return "", fmt.Errorf("%w; it is still where it was deployed (%s): finish the rotation there by hand, or start over: plana keys rotate %s --rebuild, then plana keys rotate %s",
			lost, t, j.Old.ID, j.Old.ID)
	}
	data, err := os.ReadFile(t.Arg)
	if err != nil {
		return "", fmt.Errorf("%w, and the env file it was deployed to cannot be read: %v", lost, err)
	}
	for _, name := range []string{EnvKeyNew, EnvKey} {
		v, ok := LookupEnv(data, name)
		if !ok || client.PrefixOf(v) != j.New.Prefix || x.r.ClientFor == nil {
			continue
		}
		c, err := x.r.ClientFor(v)
		if err != nil {
			return "", err
		}
		me, err := c.Me(ctx)
		if err != nil || me.Key.ID != j.New.ID {
			continue
		}
		if err := x.r.Secrets.Set(secret.KeyName(j.New.ID), v); err != nil {
			x.r.rep().Warn(fmt.Sprintf("%v; found it in %s, but could not store it again: %v", lost, t.Arg, err))
		} else {
			x.r.rep().Warn(fmt.Sprintf("%v; found it in %s and stored it again", lost, t.Arg))
		}
		x.plaintext = v
		return v, nil
	}
	return "", fmt.Errorf("%w, and %s no longer holds it either: put it back under %s, or start over: plana keys rotate %s --rebuild, then plana keys rotate %s",
		lost, t.Arg, EnvKeyNew, j.Old.ID, j.Old.ID)
}

// ensureChecked proves the new key answers before anyone is handed it; a new
// key can take seconds to reach every instance of the API.
func (x *run) ensureChecked(ctx context.Context) error {
	if x.j.Step.Reached(StepChecked) {
		return nil
	}
	if x.r.ClientFor == nil {
		return errors.New("rotate: Rotator needs ClientFor to check the new key")
	}
	key, err := x.newPlaintext(ctx)
	if err != nil {
		return err
	}
	c, err := x.r.ClientFor(key)
	if err != nil {
		return err
	}
	x.r.rep().Waiting(fmt.Sprintf("waiting for the new key %s to answer", x.j.New.Prefix))
	ctx2, cancel := context.WithTimeout(ctx, checkNewTimeout)
	defer cancel()
	wait := 200 * time.Millisecond
	for {
		_, err = c.Me(ctx2)
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrUnauthenticated) || ctx2.Err() != nil {
			return fmt.Errorf("the new key %s does not answer: %w", x.j.New.Prefix, err)
		}
		select {
		case <-ctx2.Done():
			return fmt.Errorf("the new key %s was still refused after %s: %w", x.j.New.Prefix, checkNewTimeout, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
	// Nobody else has the key yet, so every call logged for it so far is
	// this check: the gate must not count them as the automation's.
	own, err := x.r.API.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: x.j.New.ID, PageSize: logPageSize})
	if err != nil {
		return fmt.Errorf("reading the new key's execution log: %w", err)
	}
	for _, e := range own {
		x.j.OwnCalls = append(x.j.OwnCalls, e.ID)
	}
	x.j.advance(StepChecked, x.now())
	if err := x.save(); err != nil {
		return err
	}
	return x.r.at("checked")
}

// ensureDeployed is step 2. Deploying the same key to the same target again
// is a no-op.
func (x *run) ensureDeployed(ctx context.Context) error {
	j := x.j
	target := x.opts.Target
	if target == "" {
		target = j.Target
	}
	if j.Deployed && target == j.Target {
		return nil
	}
	t, err := ParseTarget(target)
	if err != nil {
		return err
	}
	x.r.rep().Step("Step 2: deploy the new key alongside the old")
	if t.Kind == TargetNone {
		x.r.rep().Info(fmt.Sprintf("no deploy target: give the automation the new key (plana keys secret %s) next to the old one, trying the new one first", j.New.ID))
	} else {
		key, err := x.newPlaintext(ctx)
		if err != nil {
			return err
		}
		changed, err := deployTo(ctx, t, key, x.opts.SecretOut, x.opts.ExecTimeout)
		if err != nil {
			if j.PlaintextStored {
				return fmt.Errorf("%w\nThe new key %s is safe in the keyring and not deployed yet: fix the target, then run the same command again", err, j.New.Prefix)
			}
			return fmt.Errorf("%w\nThe new key %s was only in this run's memory (no keyring): the next run revokes it and issues another", err, j.New.Prefix)
		}
		if changed {
			x.r.rep().Info("deployed to " + t.String())
		}
	}
	j.Target, j.Deployed = target, true
	j.advance(StepDeployed, x.now())
	if err := x.save(); err != nil {
		return err
	}
	if t.Kind != TargetNone {
		x.log(EventDeployed, t.Kind)
	}
	return x.r.at("deployed")
}

// quietPeriod is the option's, else the journal's, else one suggested from
// the old key's cadence; it is kept in the journal so a resumed run uses the
// same one.
func (x *run) quietPeriod(ctx context.Context) (time.Duration, error) {
	if x.opts.QuietPeriod > 0 {
		x.j.QuietSeconds = int64(x.opts.QuietPeriod / time.Second)
		return x.opts.QuietPeriod, nil
	}
	if q := x.j.quiet(); q > 0 {
		return q, nil
	}
	q, err := x.r.SuggestQuietPeriod(ctx, x.j.Old.ID)
	if err != nil {
		return 0, err
	}
	x.r.rep().Info(fmt.Sprintf("no quiet period configured: using %s, twice the longest gap between the old key's calls over the last 30 days (set one with --quiet-period)", fmtDuration(q)))
	x.j.QuietSeconds = int64(q / time.Second)
	return q, nil
}

// SuggestQuietPeriod reads the old key's calls of the last 30 days and
// proposes a quiet period from their cadence.
func (r *Rotator) SuggestQuietPeriod(ctx context.Context, keyID string) (time.Duration, error) {
	if _, err := r.API.Me(ctx); err != nil {
		return 0, err
	}
	now, _ := r.API.ServerNow()
	var calls []time.Time
	err := r.API.ExecutionLogPages(ctx, client.ExecutionLogOptions{KeyID: keyID, Since: now.Add(-cadenceWindow), PageSize: logPageSize, Limit: 20000},
		func(es []client.ExecutionLogEntry) error {
			for _, e := range es {
				calls = append(calls, e.At)
			}
			return nil
		})
	if err != nil {
		return 0, fmt.Errorf("reading the old key's execution log: %w", err)
	}
	return SuggestQuietPeriod(calls), nil
}

// ensureVerified is step 3: the new key used, and (outside an emergency) the
// old one quiet for the quiet period.
func (x *run) ensureVerified(ctx context.Context) error {
	if x.j.Step.Reached(StepVerified) {
		return nil
	}
	if err := x.needNew(); err != nil {
		return err
	}
	x.r.rep().Step("Step 3: verify the new key is in use")
	q, err := x.quietPeriod(ctx)
	if err != nil {
		return err
	}
	rep, err := x.waitGate(ctx, newGate(x.r.API, x.j, q, !x.j.Emergency && !x.j.OldRevoked))
	x.res.Gate = &rep
	if err != nil {
		if serr := x.save(); serr != nil {
			return serr
		}
		return err
	}
	x.j.advance(StepVerified, x.now())
	if err := x.save(); err != nil {
		return err
	}
	x.log(EventVerified, "")
	return x.r.at("verified")
}

func (x *run) waitGate(ctx context.Context, g *gate) (GateReport, error) {
	poll := x.opts.PollInterval
	if poll <= 0 {
		poll = defaultPollInterval
	}
	var deadline <-chan time.Time
	if x.opts.Timeout > 0 {
		t := time.NewTimer(x.opts.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	last := ""
	for {
		rep, err := g.eval(ctx)
		if err != nil {
			return rep, err
		}
		if rep.Passed {
			x.r.rep().Info(rep.Summary())
			return rep, nil
		}
		if x.opts.NoWait {
			return rep, &GateError{Report: rep}
		}
		if gw, ok := x.r.rep().(GateWatcher); ok {
			gw.GateChecked(rep)
		}
		if s := rep.Summary(); s != last {
			x.r.rep().Waiting("waiting: " + s)
			last = s
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-deadline:
			return rep, &GateError{Report: rep}
		case <-time.After(poll):
		}
	}
}

// confirm is step 4, the human's: remove the old key and the fallback code.
func (x *run) confirm(prompt string) error {
	if x.opts.Yes {
		return nil
	}
	if x.opts.Confirm == nil {
		return ErrConfirmRequired
	}
	ok, err := x.opts.Confirm(prompt)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: stopped before revoking %s; run the same command again when ready", ErrPending, x.j.Old.Prefix)
	}
	return nil
}

func (x *run) ensureFinalized(ctx context.Context) error {
	if x.j.Step.Reached(StepFinalized) {
		return nil
	}
	x.r.rep().Step("Step 4: remove the old key from the automation")
	prompt := fmt.Sprintf("Remove the old key %s from the automation (and any fallback code) and revoke it?", x.j.Old.Prefix)
	if t, _ := ParseTarget(x.j.Target); t.Kind == TargetEnvFile {
		prompt = fmt.Sprintf("Leave only the new key in %s and revoke the old key %s?", t.Arg, x.j.Old.Prefix)
	}
	if err := x.confirm(prompt); err != nil {
		return err
	}
	return x.finalize(ctx)
}

// finalize leaves only the new key in an env-file target.
func (x *run) finalize(ctx context.Context) error {
	t, err := ParseTarget(x.j.Target)
	if err != nil {
		return err
	}
	if t.Kind == TargetEnvFile {
		key, err := x.newPlaintext(ctx)
		if err != nil {
			return err
		}
		changed, err := EnvFile{Path: t.Arg}.Finalize(key)
		if err != nil {
			return err
		}
		if changed {
			x.r.rep().Info(fmt.Sprintf("%s now holds only the new key, under %s", t.Arg, EnvKey))
		}
	} else if t.Kind != TargetNone {
		x.r.rep().Info("remove the old key from " + t.String() + " yourself: plana only adds keys there")
	}
	x.j.advance(StepFinalized, x.now())
	if err := x.save(); err != nil {
		return err
	}
	x.log(EventFinalized, t.Kind)
	return x.r.at("finalized")
}

// ensureRevoked is step 5.
func (x *run) ensureRevoked(ctx context.Context) error {
	if x.j.Step.Reached(StepRevoked) && x.j.Step != StepDone {
		return x.finish(ctx)
	}
	if x.j.Step == StepDone {
		return nil
	}
	x.r.rep().Step("Step 5: revoke the old key")
	q, err := x.quietPeriod(ctx)
	if err != nil {
		return err
	}
	rep, err := x.waitGateOnce(ctx, q)
	x.res.Gate = &rep
	if err != nil {
		return err
	}
	forced := ""
	if !rep.Passed {
		if !x.opts.Force {
			return &GateError{Report: rep}
		}
		x.r.rep().Warn("REVOKING ALTHOUGH THE GATE DOES NOT HOLD (--force): " + rep.Summary())
		// The log must show the revoke was not earned by the gate.
		forced = "forced (--force): " + rep.Summary()
	} else {
		x.r.rep().Info("checked again just now: " + rep.Summary())
	}
	if !x.j.Step.Reached(StepFinalized) {
		if err := x.confirm(fmt.Sprintf("Revoke the old key %s (%s)? It stops working within seconds.", x.j.Old.Name, x.j.Old.Prefix)); err != nil {
			return err
		}
	}
	if err := x.revoke(ctx, forced); err != nil {
		return err
	}
	return x.finish(ctx)
}

// waitGateOnce evaluates the gate once more, right before the revoke: the
// old key may have been used since step 3.
func (x *run) waitGateOnce(ctx context.Context, q time.Duration) (GateReport, error) {
	return newGate(x.r.API, x.j, q, true).eval(ctx)
}

// revoke revokes the old key; detail, logged with it, says why when the
// gate did not hold.
func (x *run) revoke(ctx context.Context, detail string) error {
	if _, err := x.r.API.RevokeKey(ctx, x.j.Old.ID); err != nil {
		return fmt.Errorf("revoking the old key %s: %w", x.j.Old.Prefix, err)
	}
	x.j.OldRevoked = true
	x.j.advance(StepRevoked, x.now())
	if err := x.save(); err != nil {
		return err
	}
	x.log(EventRevoked, detail)
	x.r.rep().Info(fmt.Sprintf("revoked %s (%s)", x.j.Old.Name, x.j.Old.Prefix))
	return x.r.at("revoked")
}

// finish checks the old key is refused, forgets its plaintext, and closes
// the journal.
func (x *run) finish(ctx context.Context) error {
	if err := x.checkRefused(ctx); err != nil {
		return err
	}
	now := x.now()
	x.j.advance(StepDone, now)
	dst, err := x.js.finish(x.j, now)
	if err != nil {
		return err
	}
	x.res.Journal = dst
	x.log(EventRotated, "")
	return nil
}

func (x *run) checkRefused(ctx context.Context) error {
	name := secret.KeyName(x.j.Old.ID)
	old, err := x.r.Secrets.Get(name)
	if errors.Is(err, secret.ErrNotFound) || errors.Is(err, secret.ErrUnavailable) {
		return nil
	}
	if err != nil {
		return err
	}
	if x.r.ClientFor != nil {
		c, err := x.r.ClientFor(old)
		if err != nil {
			return err
		}
		ctx2, cancel := context.WithTimeout(ctx, checkRevokedTimeout)
		defer cancel()
		for {
			_, err := c.Me(ctx2)
			if errors.Is(err, client.ErrUnauthenticated) {
				break
			}
			select {
			case <-ctx2.Done():
				return fmt.Errorf("the old key %s still answers %s after it was revoked: check the BOS status page and revoke it again with plana keys revoke %s", x.j.Old.Prefix, checkRevokedTimeout, x.j.Old.ID)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	if err := x.r.Secrets.Delete(name); err != nil && !errors.Is(err, secret.ErrNotFound) {
		return fmt.Errorf("deleting the old key's plaintext from the keyring: %w", err)
	}
	return nil
}

// revokeNow is the emergency's: the old key goes before anything else.
func (x *run) revokeNow(ctx context.Context) error {
	if x.j.OldRevoked {
		return nil
	}
	x.r.rep().Step("Emergency: revoke the old key now")
	x.r.rep().Warn(fmt.Sprintf("revoking %s at once (%s): the automation fails until it has the new key", x.j.Old.Prefix, x.j.Reason))
	if _, err := x.r.API.RevokeKey(ctx, x.j.Old.ID); err != nil {
		return fmt.Errorf("revoking the old key %s: %w", x.j.Old.Prefix, err)
	}
	x.j.OldRevoked = true
	if err := x.save(); err != nil {
		return err
	}
	x.log(EventRevoked, "emergency")
	return x.r.at("revoked")
}

// finishEmergency is step 4 without its question (the old key is already
// revoked, so what is left of it in the target is dead configuration).
func (x *run) finishEmergency(ctx context.Context) error {
	if !x.j.Step.Reached(StepFinalized) {
		if err := x.finalize(ctx); err != nil {
			return err
		}
	}
	x.j.advance(StepRevoked, x.now())
	return x.finish(ctx)
}

// plan says what each step would do, changing nothing.
func (x *run) plan(ctx context.Context) (*Result, error) {
	j := x.j
	var p []string
	add := func(s string, a ...any) { p = append(p, fmt.Sprintf(s, a...)) }
	if j.Step != StepNone {
		add("resume the rotation of %s at step %q (journal %s)", j.Old.Prefix, j.Step, x.js.path(j.Old.ID))
	}
	emergency := j.Emergency || x.opts.Emergency != ""
	if j.New == nil {
		name, err := x.successorName(ctx)
		if err != nil {
			return nil, err
		}
		add("create %q with scopes %v (the plaintext goes straight into the keyring, after a keyring probe)", name, x.old.Scopes)
		add("check the new key answers GET /v1/me")
	}
	if emergency && !j.OldRevoked {
		add("revoke the old key %s (%s) at once: emergency (%s)", j.Old.Name, j.Old.Prefix, x.opts.Reason)
	}
	target := x.opts.Target
	if target == "" {
		target = j.Target
	}
	if !j.Deployed {
		t, err := ParseTarget(target)
		if err != nil {
			return nil, err
		}
		switch t.Kind {
		case TargetEnvFile:
			add("add %s to %s, keeping %s", EnvKeyNew, t.Arg, EnvKey)
		case TargetExec:
			add("run %q with the new key on its stdin", t.Arg)
		case TargetStdout:
			add("print the new key once to stdout")
		default:
			add("leave deploying the new key to you (no --to target)")
		}
	}
	q := x.opts.QuietPeriod
	if q == 0 {
		q = j.quiet()
	}
	if q == 0 {
		var err error
		if q, err = x.r.SuggestQuietPeriod(ctx, j.Old.ID); err != nil {
			return nil, err
		}
	}
	if emergency {
		add("wait until the new key is used")
	} else {
		add("wait until the new key is used and the old key %s has been unused for %s (server time)", j.Old.Prefix, fmtDuration(q))
		add("ask for confirmation, then leave only the new key in the automation")
		add("revoke the old key %s, check it is refused, delete its plaintext from the keyring", j.Old.Prefix)
	}
	add("append each step to the rotation log %s", OpenLog(x.r.StateDir).Path)
	for _, s := range p {
		x.r.rep().Info("would " + s)
	}
	res := x.result()
	res.Plan, res.QuietPeriod = p, duration.JSON(q)
	return res, nil
}

// rotationOf returns the old key id of the rotation whose new key is id.
func (s journals) rotationOf(id string) string {
	js, _ := s.all()
	for _, j := range js {
		if j.New != nil && j.New.ID == id {
			return j.Old.ID
		}
	}
	return ""
}
