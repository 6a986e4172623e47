package rotate

import (
	"context"
	"fmt"

	"github.com/plana-cli/plana/rotate/rotlog"
)

// revokeNow is the emergency's: the old key goes before anything else.
func (s *session) revokeNow(ctx context.Context) error {
	s.announce()
	s.rep.Warn(fmt.Sprintf("revoking %s at once (%s): the automation fails until it has the new key", s.j.Old.Prefix, s.j.Reason))
	if err := s.revokeOld(ctx); err != nil {
		return err
	}
	if err := s.save(); err != nil {
		return err
	}
	s.log(rotlog.EventRevoked, "emergency")
	return s.r.at("revoked")
}

// finishEmergency is steps 4 and 5 of an emergency: step 4 without its
// question (the old key is already revoked, so what is left of it in the
// target is dead configuration), and step 5's check that it is refused.
func (s *session) finishEmergency(ctx context.Context) error {
	if !s.j.State.Reached(Finalized) {
		if err := s.finalize(ctx); err != nil {
			return err
		}
	}
	s.j.advance(Revoked, s.now())
	return s.finish(ctx)
}
