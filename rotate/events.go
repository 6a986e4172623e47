package rotate

import (
	"context"
	"errors"
	"fmt"

	"github.com/plana-cli/plana/internal/notify"
	"github.com/plana-cli/plana/rotate/gate"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// notifyKinds maps the rotation log's events to the hooks' events.
// Deployed and finalized are told per target (see deployTargets).
var notifyKinds = map[string]notify.Kind{
	rotlog.EventCreated:  notify.Created,
	rotlog.EventVerified: notify.Verified,
	rotlog.EventRevoked:  notify.Revoked,
}

// stepOfKind is the step each event belongs to.
var stepOfKind = map[notify.Kind]notify.Step{
	notify.Started:            notify.StepCreate,
	notify.Created:            notify.StepCreate,
	notify.Deployed:           notify.StepDeploy,
	notify.Waiting:            notify.StepVerify,
	notify.Verified:           notify.StepVerify,
	notify.Finalized:          notify.StepFinalize,
	notify.Revoked:            notify.StepRevoke,
	notify.RefusedAfterRevoke: notify.StepRevoke,
	notify.Aborted:            notify.StepAbort,
}

// notify hands an event of this rotation to the hooks, if any; fill adds
// what only some events carry.
func (s *session) notify(kind notify.Kind, fill func(*notify.Event)) {
	if s.r.Notify == nil || s.opts.DryRun {
		return
	}
	e := notify.Event{Kind: kind, Step: stepOfKind[kind], Time: s.now(),
		Key:    notify.Key{ID: notify.Text(s.j.Old.ID), Name: notify.Text(s.j.Old.Name), Prefix: notify.Text(s.j.Old.Prefix)},
		Actor:  notify.Text(s.actor.Email),
		Reason: notify.Text(s.j.Reason)}
	if n := s.j.New; n != nil {
		e.New = &notify.Key{ID: notify.Text(n.ID), Name: notify.Text(n.Name), Prefix: notify.Text(n.Prefix)}
	}
	if fill != nil {
		fill(&e)
	}
	s.r.Notify.Notify(e)
}

// notifyWaiting tells the hooks what the gate waits on: the sources that
// have not moved, else those still calling the old key.
func (s *session) notifyWaiting(rep gate.Report) {
	s.notify(notify.Waiting, func(e *notify.Event) {
		for _, m := range rep.Migration {
			if m.Holding {
				e.Sources = append(e.Sources, notifySource(gate.Source{SourceIP: m.SourceIP, UserAgent: m.UserAgent, Calls: m.OldCalls, LastSeen: m.OldLast}))
			}
		}
		if len(e.Sources) == 0 {
			for _, src := range rep.Sources {
				e.Sources = append(e.Sources, notifySource(src))
			}
		}
	})
}

// notifySource is a gate's source as the hooks get it: the same fields.
func notifySource(src gate.Source) notify.Source {
	return notify.Source{SourceIP: notify.Text(src.SourceIP), UserAgent: notify.Text(src.UserAgent), Path: notify.Text(src.Path), Calls: src.Calls, LastSeen: src.LastSeen}
}

// notifyFailed tells the hooks the step row failed, or was interrupted
// (Ctrl-C): a wait (ErrPending) is neither.
func (s *session) notifyFailed(row *stepRow, err error) {
	if errors.Is(err, ErrPending) {
		return
	}
	kind := notify.Failed
	if errors.Is(err, context.Canceled) {
		kind = notify.Interrupted
	}
	s.notify(kind, func(e *notify.Event) {
		e.Step, e.Error = notify.Step(row.name), notify.Text(err.Error())
	})
}

// waitingOnKey names what the gate waits on, so that hooks hear of a wait
// when it changes, not at every poll.
func waitingOnKey(rep gate.Report) string {
	key := fmt.Sprintf("used=%v quiet=%v", rep.NewUsed, rep.OldQuiet)
	for _, m := range rep.Migration {
		if m.Holding {
			key += " " + m.SourceIP + "|" + m.UserAgent
		}
	}
	for _, src := range rep.Sources {
		key += " " + src.SourceIP + "|" + src.UserAgent
	}
	return key
}
