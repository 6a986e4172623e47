package fleet

import (
	"sync"

	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate"
	"github.com/plana-cli/plana/rotate/gate"
)

// reporter is r's Reporter, one that says nothing when r has none.
func reporter(r *rotate.Rotator) rotate.Reporter {
	if r.Reporter == nil {
		return quiet{}
	}
	return r.Reporter
}

type quiet struct{}

func (quiet) Step(string)    {}
func (quiet) Waiting(string) {}
func (quiet) Info(string)    {}
func (quiet) Warn(string)    {}

// keyReporter tells one key's progress in a fleet: its lines prefixed with
// the key, one writer at a time.
type keyReporter struct {
	mu     *sync.Mutex
	inner  rotate.Reporter
	prefix string
}

func (k *keyReporter) do(f func(rotate.Reporter, string), s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f(k.inner, k.prefix+s)
}

func (k *keyReporter) Step(s string)    { k.do(rotate.Reporter.Info, s) }
func (k *keyReporter) Waiting(s string) { k.do(rotate.Reporter.Waiting, s) }
func (k *keyReporter) Info(s string)    { k.do(rotate.Reporter.Info, s) }
func (k *keyReporter) Warn(s string)    { k.do(rotate.Reporter.Warn, s) }

// GateChecked passes each gate evaluation on to a reporter that follows
// them (a spinner's text, a test's clock).
func (k *keyReporter) GateChecked(rep gate.Report) {
	if gw, ok := k.inner.(rotate.GateWatcher); ok {
		k.mu.Lock()
		defer k.mu.Unlock()
		gw.GateChecked(rep)
	}
}

// serialStore lets one call at a time reach the keyring: the Secret Service
// client (zalando/go-keyring over godbus) failed, and once panicked, under
// a fleet's concurrent calls; one at a time costs a few milliseconds.
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
