package secret

import (
	"fmt"
	"sync"
)

// Memory is an in-process Store for tests. Its fault fields let tests act out
// a broken keyring: SetErr fails every Set, Hang blocks every call until the
// channel is closed (wrap it with WithTimeout to see ErrUnavailable).
type Memory struct {
	mu     sync.Mutex
	m      map[string]string
	SetErr error
	Hang   chan struct{}
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{m: map[string]string{}} }

func (s *Memory) wait() {
	s.mu.Lock()
	h := s.Hang
	s.mu.Unlock()
	if h != nil {
		<-h
	}
}

func (s *Memory) Get(name string) (string, error) {
	s.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	if !ok {
		return "", ErrNotFound
	}
	return v, nil
}

func (s *Memory) Set(name, value string) error {
	s.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.SetErr != nil {
		return s.SetErr
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(value), MaxValueLen)
	}
	s.m[name] = value
	return nil
}

func (s *Memory) Delete(name string) error {
	s.wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[name]; !ok {
		return ErrNotFound
	}
	delete(s.m, name)
	return nil
}

// Names lists the stored entry names, for assertions.
func (s *Memory) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	return out
}
