package rotate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/target"
)

// newPlaintext is the new key's plaintext, from this run or the keyring.
func (s *session) newPlaintext(ctx context.Context) (string, error) {
	if s.plaintext != "" {
		return s.plaintext, nil
	}
	if !s.j.PlaintextStored {
		// Made on another machine, or by a run without a keyring: here only
		// the target can hold it.
		if p, ok := s.plaintextInTarget(ctx); ok {
			return p, nil
		}
		if s.j.Adopted {
			return "", s.heldElsewhere()
		}
		return "", fmt.Errorf("the plaintext of the new key %s is not in the keyring (it was handed out once when created); deploy it by hand", s.j.New.Prefix)
	}
	p, err := s.r.Secrets.Get(secret.KeyName(s.j.New.ID))
	if errors.Is(err, secret.ErrNotFound) {
		return s.recoverPlaintext(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("reading the new key %s from the keyring: %w", s.j.New.Prefix, err)
	}
	return p, nil
}

// recoverPlaintext finds the new key's plaintext, deleted from the keyring
// behind plana's back, in a target it was deployed to that can be read
// back, and stores it again. Only a value that BOS confirms is the new key
// is taken.
func (s *session) recoverPlaintext(ctx context.Context) (string, error) {
	j := s.j
	lost := fmt.Errorf("the plaintext of the new key %s is gone from the keyring (deleted outside plana?)", j.New.Prefix)
	if !j.State.Reached(Deployed) {
		return "", fmt.Errorf("%w; nobody has it yet, so run plana keys rotate %s: it revokes that key and issues another", lost, j.Old.ID)
	}
	if len(j.Targets) == 0 {
		return "", fmt.Errorf("%w; it is still where you deployed it by hand: finish the rotation there, or start over: plana keys rotate %s --rebuild, then plana keys rotate %s",
			lost, j.Old.ID, j.Old.ID)
	}
	var readable, writeOnly, unread []string
	for _, st := range j.Targets {
		t, err := s.open(st.Target)
		if err != nil {
			return "", err
		}
		if !t.Readable() {
			writeOnly = append(writeOnly, t.String())
			continue
		}
		readable = append(readable, t.String())
		h, err := t.Read(ctx)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s cannot be read: %v", t, err))
			continue
		}
		if v, ok := s.confirmed(ctx, h); ok {
			if err := s.r.Secrets.Set(secret.KeyName(j.New.ID), v); err != nil {
				s.rep.Warn(fmt.Sprintf("%v; found it in %s, but could not store it again: %v", lost, t, err))
			} else {
				s.rep.Warn(fmt.Sprintf("%v; found it in %s and stored it again", lost, t))
			}
			s.plaintext = v
			return v, nil
		}
	}
	if len(readable) == 0 {
		return "", fmt.Errorf("%w; it is still where it was deployed (%s): finish the rotation there by hand, or start over: plana keys rotate %s --rebuild, then plana keys rotate %s",
			lost, strings.Join(writeOnly, ", "), j.Old.ID, j.Old.ID)
	}
	why := ""
	if len(unread) > 0 {
		why = " (" + strings.Join(unread, "; ") + ")"
	}
	return "", fmt.Errorf("%w, and %s no longer holds it either%s: put it back under %s, or start over: plana keys rotate %s --rebuild, then plana keys rotate %s",
		lost, strings.Join(readable, " nor "), why, target.NewKeySlot, j.Old.ID, j.Old.ID)
}

// confirmed is the value of h that BOS confirms is the new key: it has the
// new key's prefix and answers as the new key.
func (s *session) confirmed(ctx context.Context, h target.Held) (string, bool) {
	for _, v := range []string{h.New, h.Key} {
		if v == "" || client.PrefixOf(v) != s.j.New.Prefix || s.r.ClientFor == nil {
			continue
		}
		c, err := s.r.ClientFor(v)
		if err != nil {
			continue
		}
		if me, err := c.Me(ctx); err == nil && me.Key.ID == s.j.New.ID {
			return v, true
		}
	}
	return "", false
}
