package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/gate"
)

// ensureChecked proves the new key answers before anyone is handed it; a new
// key can take seconds to reach every instance of the API.
func (s *session) ensureChecked(ctx context.Context) error {
	if s.r.ClientFor == nil {
		return errors.New("rotate: Rotator needs ClientFor to check the new key")
	}
	key, err := s.newPlaintext(ctx)
	if err != nil {
		return err
	}
	c, err := s.r.ClientFor(key)
	if err != nil {
		return err
	}
	s.rep.Waiting(fmt.Sprintf("waiting for the new key %s to answer", s.j.New.Prefix))
	ctx2, cancel := context.WithTimeout(ctx, checkNewTimeout)
	defer cancel()
	var refused error
	err = gate.Poll(ctx2, 200*time.Millisecond, 2*time.Second, 0, func() (bool, error) {
		_, err := c.Me(ctx2)
		if err != nil && (!errors.Is(err, client.ErrUnauthenticated) || ctx2.Err() != nil) {
			return false, fmt.Errorf("the new key %s does not answer: %w", s.j.New.Prefix, err)
		}
		refused = err
		return err == nil, nil
	})
	if _, stopped := errors.AsType[*gate.Stopped](err); stopped {
		return fmt.Errorf("the new key %s was still refused after %s: %w", s.j.New.Prefix, checkNewTimeout, refused)
	}
	if err != nil {
		return err
	}
	// Nobody else has the key yet, so every call logged for it so far is
	// this check: the gate must not count them as the automation's.
	own, err := s.r.API.ExecutionLog(ctx, client.ExecutionLogOptions{KeyID: s.j.New.ID, PageSize: pageSize})
	if err != nil {
		return fmt.Errorf("reading the new key's execution log: %w", err)
	}
	for _, e := range own {
		s.j.OwnCalls = append(s.j.OwnCalls, e.ID)
	}
	return s.record(Checked, "", "")
}
