package rotate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gofrs/flock"
	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
	"github.com/plana-cli/plana/rotate/target"
)

// session is one locked run on one key's rotation: every entry point opens
// one, walks some rows of the step table, and closes it.
type session struct {
	r         *Rotator
	rep       Reporter
	opts      Options
	js        journals
	j         *Journal
	lock      *flock.Flock
	old       client.APIKey
	actor     ref.Actor
	caller    client.User // the management key's user: whose successors are believed (lineage.Successors)
	lost      *ref.Key    // this run's successor, revoked when it lost the race
	plaintext string      // the new key's, when created by this run
	keyless   bool        // no keyring: the plaintext lives only in this run
	row       *stepRow    // the row being walked, whose heading announce shows
	// gate is step 3's, kept for step 5's last check in the same run: it
	// reads on from where step 3 left off, not the whole look-back again.
	gate   *gate.Gate
	res    *Result
	resume string // the command that resumes this run; "": plana keys rotate
	// listed is reconcile's listing of the workspace's keys, until step 1.
	listed []client.APIKey
	// opened are the targets this session opened, by --to value.
	opened map[string]target.Target
}

// withSession opens the session of key's rotation, runs fn in it, and
// closes it whatever fn returns.
func (r *Rotator) withSession(ctx context.Context, key client.APIKey, opts Options, fn func(*session) (*Result, error)) (*Result, error) {
	s, err := r.open(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return fn(s)
}

// open locks key's rotation and loads its journal. key may be the old key
// or the successor of a rotation under way.
func (r *Rotator) open(ctx context.Context, key client.APIKey, opts Options) (*session, error) {
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
	s := &session{r: r, rep: r.rep(), opts: opts, js: r.journals(), old: key}
	if id := s.js.rotationOf(key.ID); id != "" {
		old, err := r.API.GetKey(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("reading the key being rotated: %w", err)
		}
		s.old = *old
	}
	if !opts.DryRun {
		lk, err := s.js.lock(s.old.ID)
		if err != nil {
			return nil, err
		}
		s.lock = lk
	}
	j, err := s.js.load(s.old.ID)
	if err != nil {
		s.close()
		return nil, err
	}
	if err := s.decide(j); err != nil {
		s.close()
		return nil, err
	}
	me, err := r.me(ctx)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("checking the management key: %w", err)
	}
	s.actor = ref.Actor{Email: me.User.Email, Local: r.localActor()}
	s.caller = me.User
	begun := j != nil
	reset := begun && opts.ResetSettings
	if !begun {
		now := s.now()
		j = &Journal{Old: ref.Of(s.old), OldCreatedBy: s.old.CreatedBy.Email, Reason: opts.Reason,
			Emergency: opts.Emergency != "", Actor: s.actor, StartedAt: now, UpdatedAt: now}
	}
	// A rotation records its settings when it begins and when they are
	// reset; otherwise those it recorded win (decide).
	if !begun || reset {
		j.setTargets(s.opts.Targets)
		j.QuietSeconds = int64(s.opts.QuietPeriod / time.Second)
	}
	s.j = j
	if opts.Emergency != "" && !j.Emergency {
		// An emergency overrides a planned rotation already under way, and
		// carries on no successor it did not create, even one this
		// rotation carried on before.
		j.Emergency, j.Reason = true, opts.Reason
		if j.Adopted && j.New != nil && !j.oldRevoked() {
			s.passedOver(*j.New, j.NewCreatedBy, j.NewCreatedAt)
			j.reset()
		}
	}
	s.res = &Result{Old: j.Old, DryRun: opts.DryRun, Journal: s.js.path(j.Old.ID)}
	if reset {
		// Kept at once: a run that stops before its next step is saved
		// must not leave the old settings to the next.
		if err := s.save(); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// decide fixes the settings of this run of the rotation j records (nil: one
// not begun) once, with settingsOf, and puts them in s.opts, where every
// step reads them.
func (s *session) decide(j *Journal) error {
	set, notes, err := settingsOf(s.old.Name, j, s.opts)
	if err != nil {
		return err
	}
	for _, n := range notes {
		s.rep.Info(n)
	}
	s.opts.Targets, s.opts.QuietPeriod, s.opts.PollInterval, s.opts.ExecTimeout = set.Targets, set.QuietPeriod, set.PollInterval, set.ExecTimeout
	return nil
}

// createKey creates a key at the server (see Rotator.Changed).
func (s *session) createKey(ctx context.Context, req client.CreateKeyRequest, idempotencyKey string) (*client.CreatedKey, error) {
	defer s.changed()
	return s.r.API.CreateKey(ctx, req, idempotencyKey)
}

// revokeKey revokes key id at the server (see Rotator.Changed).
func (s *session) revokeKey(ctx context.Context, id string) (*client.APIKey, error) {
	defer s.changed()
	return s.r.API.RevokeKey(ctx, id)
}

func (s *session) changed() {
	if s.r.Changed != nil {
		s.r.Changed()
	}
}

func (s *session) close() {
	if s.gate != nil {
		s.gate.Close()
		s.gate = nil
	}
	if s.lock != nil {
		s.lock.Unlock()
		s.lock = nil
	}
}

// now is the server's time, from the Date header of its last answer: the
// journal and the log are stamped with it. A server that sends no Date
// leaves only the local clock for those stamps; the gate, which decides the
// revoke, refuses to run on it (see gate.eval).
func (s *session) now() time.Time {
	if t, ok := s.r.API.ServerNow(); ok {
		return t.UTC()
	}
	return time.Now().UTC()
}

func (s *session) save() error {
	if s.opts.DryRun {
		return nil
	}
	s.j.UpdatedAt = s.now()
	return s.js.save(s.j)
}

func (s *session) log(event, detail string) {
	if s.opts.DryRun {
		return
	}
	e := rotlog.Entry{Time: s.now(), Event: event, Old: s.j.Old, New: s.j.New, Reason: s.j.Reason, Actor: s.actor, Detail: detail}
	if _, err := s.r.Log().Append(e); err != nil {
		s.rep.Warn("could not append to the rotation log: " + err.Error())
	}
	if kind, ok := notifyKinds[event]; ok {
		s.notify(kind, nil)
	}
}

// record records step st in the journal, saves it, logs event (unless empty)
// and passes the test hook named after st.
func (s *session) record(st State, event, detail string) error {
	s.j.advance(st, s.now())
	// The log line first: a journal that reached a step then vouches that
	// its line was written (the missing-log check relies on it), and a kill
	// between the two only repeats the line when the step runs again.
	if event != "" {
		s.log(event, detail)
	}
	if err := s.save(); err != nil {
		return err
	}
	return s.r.at(st.String())
}

func (s *session) result() *Result {
	res := s.res
	res.New, res.State, res.Done = s.j.New, s.j.State, s.j.State == Done
	res.Emergency, res.Reason, res.PassedOver = s.j.Emergency, s.j.Reason, s.j.PassedOver
	res.Targets = slices.Clone(s.j.Targets)
	res.QuietPeriod = duration.JSON(s.j.quiet())
	return res
}

func (s *session) needNew() error {
	if s.j.New == nil {
		return fmt.Errorf("no rotation of %s is under way: start one with plana keys rotate %s (or plana keys create --like %s)", s.old.Prefix, s.old.ID, s.old.ID)
	}
	return nil
}

// resumeCommand is the command that takes the rotation up where this run
// stops.
func (s *session) resumeCommand() string {
	if s.resume != "" {
		return s.resume
	}
	return "plana keys rotate " + s.j.Old.ID
}
