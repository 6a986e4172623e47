package target

import (
	"context"
	"fmt"
	"sync"

	"github.com/plana-cli/plana/rotate/target/awssm"
	"github.com/plana-cli/plana/rotate/target/awsssm"
	"github.com/plana-cli/plana/rotate/target/k8s"
	"github.com/plana-cli/plana/rotate/target/pass"
	"github.com/plana-cli/plana/rotate/target/sops"
)

// checkStore checks what follows a secret store's kind as far as it can be
// checked without the store.
func checkStore(sp Spec) error {
	var err error
	switch sp.Kind {
	case KindK8s:
		_, err = k8s.Parse(sp.Arg)
	case KindAWSSSM:
		err = awsssm.CheckPath(sp.Arg)
	case KindSops:
		_, err = sops.Format(sp.Arg)
	case KindPass:
		err = pass.CheckPath(sp.Arg)
	}
	return err
}

// storeTarget is the target of a secret store: its Slots, with what the
// store does besides (a k8s: rollout, pass's log line). The store's client
// is made on first use, with that operation's context: naming a target in
// a dry run or a usage check costs nothing and needs no credentials.
func storeTarget(sp Spec) Target {
	switch sp.Kind {
	case KindK8s:
		l := &lazy[*k8s.Secret]{open: func(context.Context) (*k8s.Secret, error) {
			return k8s.New(sp.Arg, k8s.Options{})
		}}
		return k8sTarget{Slots: Slots{Spec: sp, Store: l}, secret: l}
	case KindAWSSM:
		return Slots{Spec: sp, Store: &lazy[*awssm.Secret]{open: func(ctx context.Context) (*awssm.Secret, error) {
			return awssm.New(ctx, sp.Arg)
		}}}
	case KindAWSSSM:
		return Slots{Spec: sp, Store: &lazy[*awsssm.Params]{open: func(ctx context.Context) (*awsssm.Params, error) {
			return awsssm.New(ctx, sp.Arg)
		}}}
	case KindSops:
		return Slots{Spec: sp, Store: &lazy[*sops.File]{open: func(context.Context) (*sops.File, error) {
			return sops.New(sp.Arg)
		}}}
	}
	// KindPass, the last of the stores.
	l := &lazy[*pass.Store]{open: func(context.Context) (*pass.Store, error) { return pass.New(sp.Arg) }}
	return passTarget{Slots: Slots{Spec: sp, Store: l}, store: l}
}

// lazy is a Store whose client is made by the first call that needs it,
// and kept.
type lazy[S Store] struct {
	open func(context.Context) (S, error)
	mu   sync.Mutex
	s    S
	made bool
}

func (l *lazy[S]) get(ctx context.Context) (S, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.made {
		s, err := l.open(ctx)
		if err != nil {
			return s, err
		}
		l.s, l.made = s, true
	}
	return l.s, nil
}

func (l *lazy[S]) Get(ctx context.Context, names ...string) (map[string]string, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, names...)
}

func (l *lazy[S]) Put(ctx context.Context, set map[string]string, unset ...string) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.Put(ctx, set, unset...)
}

// k8sTarget is a Kubernetes Secret; with ?rollout= it restarts that
// workload after each write and waits for the rollout, since pods that
// read the Secret through their environment see a change only when they
// start. Deploy and finalize restart every time they run (the journal
// records them only once the restart is done, so a run cut short in
// between restarts again); abort restarts when it took the key out, so no
// pod keeps presenting a revoked key first.
type k8sTarget struct {
	Slots
	secret *lazy[*k8s.Secret]
}

func (t k8sTarget) Deploy(ctx context.Context, k Keys) (string, error) {
	note, err := t.Slots.Deploy(ctx, k)
	if err != nil {
		return "", err
	}
	return t.restarted(ctx, note)
}

func (t k8sTarget) Finalize(ctx context.Context, k Keys) (string, error) {
	note, err := t.Slots.Finalize(ctx, k)
	if err != nil {
		return "", err
	}
	return t.restarted(ctx, note)
}

func (t k8sTarget) Abort(ctx context.Context, k Keys) (string, error) {
	note, err := t.Slots.Abort(ctx, k)
	if err != nil || note == "" {
		return note, err
	}
	return t.restarted(ctx, note)
}

// restarted restarts the rollout's workload, if any, and adds so to note.
func (t k8sTarget) restarted(ctx context.Context, note string) (string, error) {
	s, err := t.secret.get(ctx)
	if err != nil {
		return "", err
	}
	w := s.Rollout()
	if w == nil {
		return note, nil
	}
	if err := s.Restart(ctx); err != nil {
		return "", err
	}
	return joinNotes(note, fmt.Sprintf("restarted %s and waited for its rollout", w)), nil
}

// passTarget is a password store's entries; finalize adds the rotation's
// line under the key it leaves, as the rotation procedure suggests: keep
// the log "in your password manager next to the keys themselves".
type passTarget struct {
	Slots
	store *lazy[*pass.Store]
}

func (t passTarget) Finalize(ctx context.Context, k Keys) (string, error) {
	note, err := t.Slots.Finalize(ctx, k)
	if err != nil || k.Log == "" {
		return note, err
	}
	s, err := t.store.get(ctx)
	if err != nil {
		return "", err
	}
	if err := s.Annotate(ctx, KeySlot, k.Log); err != nil {
		return "", fmt.Errorf("the new key is in place, but the rotation's line could not be added under it: %w", err)
	}
	return note, nil
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
