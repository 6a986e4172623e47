// Package rotate carries out the five-step rotation of a BOS API key without
// downtime (create, deploy alongside, verify, remove, revoke), resumable at
// every step from what the server says plus a local journal. It owns the
// procedure: the step table and its steps, the session that walks them, the
// journal, the dry run's plan, the status of rotations under way, and the
// events hooks hear of. Targets, the gate, the rotation log, the lineage and
// many rotations at once each have a package of their own below it.
package rotate

import (
	"context"
	"errors"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

// GateWatcher is a Reporter that also wants each evaluation of the gate
// while it waits, to draw the traffic moving from the old key to the new.
type GateWatcher interface {
	GateChecked(gate.Report)
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
	// MachineName is this machine's name (config machine_name): each
	// successor's lineage names it as where the plaintext went, unless the
	// run has no keyring. "": none is named.
	MachineName string
	// Notify, when set, hears of each event of every rotation.
	Notify *notify.Notifier
	// Feed, when set and running, serves the gate's reads of every rotation
	// waiting in this process with one read of the log per poll.
	Feed *gate.Feed
	// Who, when set, is who the management key is (GET /v1/me), read once
	// for a whole run: a fleet's rotations share it. nil: each session
	// reads it.
	Who *client.Me
	// Keys, when set, lists every key of the workspace, active and revoked,
	// from a listing that began at since or later (zero: any listing of the
	// run): a fleet shares one among its rotations. nil: API lists them.
	// The slice may be shared: do not change it.
	Keys func(ctx context.Context, since time.Time) ([]client.APIKey, error)
	// Probe, when set, proves the keyring works before a create; nil:
	// secret.Probe of Secrets. A fleet proves it once.
	Probe func() error
	// Changed, when set, hears each create and revoke the rotation sends,
	// once the server answered: a listing begun before is out of date.
	Changed func()
	// Waits, when set, runs each wait of a rotation (the race rule's after
	// its create, the gate's): a fleet gives the rotation's slot back while
	// it waits. nil: wait runs as it is.
	Waits func(ctx context.Context, wait func(context.Context) error) error

	// SettleDelay is how long after its create a run lists the successors
	// again to apply the race rule; 0: defaultSettleDelay.
	SettleDelay time.Duration

	// hook, when set, is called at named points of the procedure; an error
	// stops the run there, as a crash would (tests only).
	hook func(point string) error
}

// Options are the choices of one run. Targets, QuietPeriod, PollInterval
// and ExecTimeout are the run's flags: each rotation settles its settings
// from them, its Policy and what it recorded (see Policy.Resolve).
type Options struct {
	// Targets are where the new key goes (--to, repeated): each deployed,
	// then each finalized; none: the rule's, else the user deploys by hand.
	Targets      []string
	QuietPeriod  time.Duration // 0: the rule's or the profile's, else suggested from the old key's calls
	PollInterval time.Duration // 0: the profile's, else 30s
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
	// WatchAfterRevoke is how long step 5 watches, after the revoke, for
	// calls still presenting the old key; 0: no watch.
	WatchAfterRevoke time.Duration
	// Policy is what the profile says about rotations, under the flags.
	Policy Policy
	// ResetSettings decides a rotation's settings again, as if it began now,
	// where it would keep those it recorded.
	ResetSettings bool
	// hold refuses a flag that differs from what the rotation recorded
	// (Rotate and Abort: the whole procedure, not a single step).
	hold bool
}

// Reasons for a rotation besides the user's own words.
const (
	ReasonScheduled  = "scheduled"
	ReasonCompromise = "compromise"
	ReasonDeparted   = "departed"
	ReasonLostDevice = "lost-device"
)

const (
	// DefaultPollInterval is how often a wait reads the log when no
	// interval is given.
	DefaultPollInterval = 30 * time.Second
	// checkNewTimeout is how long a new key may take to reach every
	// instance of the API.
	checkNewTimeout = 30 * time.Second
	// checkRevokedTimeout is how long a revoked key may still answer.
	checkRevokedTimeout = 5 * time.Second
)

// Result says how far a rotation got.
type Result struct {
	Old         ref.Key       `json:"old"`
	New         *ref.Key      `json:"new,omitempty"`
	State       State         `json:"step"`
	Done        bool          `json:"done"`
	Emergency   bool          `json:"emergency"`
	Reason      string        `json:"reason"`
	Targets     []TargetState `json:"targets,omitempty"`
	QuietPeriod duration.JSON `json:"quiet_period,omitempty"`
	Gate        *gate.Report  `json:"gate,omitempty"`
	DryRun      bool          `json:"dry_run,omitempty"`
	Plan        []string      `json:"plan,omitempty"`
	Journal     string        `json:"journal,omitempty"`
	// AlreadyRotated: the rotation had finished before this run (on this
	// machine or another), at FinishedAt; this run changed nothing.
	AlreadyRotated bool      `json:"already_rotated,omitempty"`
	FinishedAt     time.Time `json:"finished_at,omitzero"`
	// Aborted is the new key a rotation called off revoked.
	Aborted *ref.Key `json:"aborted,omitempty"`
	// Claimants are keys that claim to replace the old key and are not
	// believed: shown, and otherwise ignored.
	Claimants []lineage.Claimant `json:"claimants,omitempty"`
	// PassedOver are the successors already there that an emergency did
	// not carry on: each still to revoke once nothing uses it.
	PassedOver []ref.Key `json:"passed_over,omitempty"`
	// Refused are the calls that still presented the old key after its
	// revoke, by source, as step 5's watch saw them.
	Refused []gate.Source `json:"refused_after_revoke,omitempty"`
}

func (r *Rotator) rep() Reporter {
	if r.Reporter == nil {
		return nopReporter{}
	}
	return r.Reporter
}

func (r *Rotator) journals() journals { return journalsOf(r.StateDir) }

// Log is the rotation log of r's state directory, keyed with r's keyring.
func (r *Rotator) Log() rotlog.Log { return OpenLog(r.StateDir, r.Secrets, r.rep().Warn) }

// OpenLog is the rotation log of stateDir, keyed with a key in keys (warn
// hears of a fallback to the plain chain), whose journals witness what it
// held: a log gone with its head is reported when they show it had entries.
func OpenLog(stateDir string, keys secret.Store, warn func(string)) rotlog.Log {
	l := rotlog.OpenKeyed(stateDir, keys, warn)
	l.Witness = func() string { return journalsOf(stateDir).evidence(l.Path) }
	return l
}

// me is who the management key is: r.Who, else asked of the server.
func (r *Rotator) me(ctx context.Context) (*client.Me, error) {
	if r.Who != nil {
		return r.Who, nil
	}
	return r.API.Me(ctx)
}

// listKeys is every key of the workspace, through r.Keys when set, from a
// listing that began at since or later. The slice may be shared: do not
// change it.
func (r *Rotator) listKeys(ctx context.Context, since time.Time) ([]client.APIKey, error) {
	if r.Keys != nil {
		return r.Keys(ctx, since)
	}
	return r.API.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusAll, PageSize: pageSize})
}

// wait runs a wait of the rotation through r.Waits (see there).
func (r *Rotator) wait(ctx context.Context, wait func(context.Context) error) error {
	if r.Waits == nil {
		return wait(ctx)
	}
	return r.Waits(ctx, wait)
}

// pageSize is the page size of plana's listings and log reads: the most
// the contract allows.
const pageSize = 1000

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

// Rotate runs the whole procedure as far as it can, resuming a rotation
// under way. It stops with a *GateError (ErrPending) while the gate of step
// 3 does not hold, and with ErrPending when step 4 is declined.
func (r *Rotator) Rotate(ctx context.Context, old client.APIKey, opts Options) (*Result, error) {
	opts.hold = true
	return r.withSession(ctx, old, opts, func(s *session) (*Result, error) {
		if opts.DryRun {
			return s.plan(ctx)
		}
		if s.j.State == NotStarted && !s.old.Active() {
			// The daily cron line after the rotation finished: done, not an
			// error. What this machine does not know, the server row finds.
			if res := s.alreadyRotated(); res != nil {
				return res, nil
			}
		}
		if err := s.checkTarget(ctx); err != nil {
			return nil, err
		}
		if s.j.State == NotStarted {
			s.notify(notify.Started, nil)
		}
		return s.walk(ctx, procedure(s.j.Emergency)...)
	})
}

// Create is step 1 alone (plana keys create --like): the new key, stored,
// and checked to answer.
func (r *Rotator) Create(ctx context.Context, old client.APIKey, opts Options) (*Result, error) {
	return r.withSession(ctx, old, opts, func(s *session) (*Result, error) {
		s.resume = "plana keys create --like " + s.j.Old.ID
		if opts.DryRun {
			return s.plan(ctx)
		}
		return s.walk(ctx, stepReconcile, stepCreate, stepSettle, stepCheck)
	})
}

// Deploy is step 2 (and step 4 with Finalize) of the rotation of key, which
// may name the old key or its successor.
func (r *Rotator) Deploy(ctx context.Context, key client.APIKey, opts Options) (*Result, error) {
	return r.withSession(ctx, key, opts, func(s *session) (*Result, error) {
		if done, err := s.fromServer(ctx); done || err != nil {
			return s.result(), err
		}
		if err := s.needNew(); err != nil {
			return nil, err
		}
		if len(s.targets()) == 0 {
			return nil, errors.New("no deploy target: pass --to TARGET, one of " + target.Forms)
		}
		if err := s.checkTarget(ctx); err != nil {
			return nil, err
		}
		if opts.DryRun {
			return s.plan(ctx)
		}
		res, err := s.walk(ctx, stepCheck, stepDeploy)
		if err != nil || !opts.Finalize {
			return res, err
		}
		// --finalize is step 4 asked for by name: no question, and asked
		// again it is done again.
		for i := range s.j.Targets {
			s.j.Targets[i].Finalized = false
		}
		err = s.finalize(ctx)
		return s.result(), err
	})
}

// Verify is step 3: it evaluates the gate, waiting for it unless NoWait.
func (r *Rotator) Verify(ctx context.Context, key client.APIKey, opts Options) (*Result, error) {
	return r.withSession(ctx, key, opts, func(s *session) (*Result, error) {
		s.resume = "plana keys verify " + s.j.Old.ID + " --wait"
		if done, err := s.fromServer(ctx); done || err != nil {
			return s.result(), err
		}
		if s.j.New == nil {
			return s.verifyOldQuiet(ctx)
		}
		return s.walk(ctx, stepVerify)
	})
}

// Revoke is step 5: refused while the gate does not hold unless Force.
func (r *Rotator) Revoke(ctx context.Context, key client.APIKey, opts Options) (*Result, error) {
	return r.withSession(ctx, key, opts, func(s *session) (*Result, error) {
		s.resume = "plana keys revoke " + s.j.Old.ID
		if opts.DryRun {
			return s.plan(ctx)
		}
		if done, err := s.fromServer(ctx); done || err != nil {
			return s.result(), err
		}
		if s.j.New == nil && s.j.Pending == nil {
			err := s.revokeAlone(ctx)
			return s.result(), err
		}
		return s.walk(ctx, stepRevoke)
	})
}
