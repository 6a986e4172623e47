package rotate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/secret"
	"github.com/plana-cli/plana/rotate/lineage"
	"github.com/plana-cli/plana/rotate/ref"
	"github.com/plana-cli/plana/rotate/rotlog"
)

// ensureCreated is step 1. Every path through it leaves at most one live
// successor: a successor whose plaintext is lost is revoked before another
// is created.
func (s *session) ensureCreated(ctx context.Context) error {
	// reconcile's listing serves the name of a key created now, no later:
	// a fleet's rotations each keeping theirs would keep a hundred.
	defer func() { s.listed = nil }()
	j := s.j
	if j.New != nil && j.Adopted {
		// Another machine's successor: its plaintext is not ours to give up.
		return nil
	}
	if j.New != nil {
		// Handed out already, the plaintext is where it was deployed.
		handedOut := j.State.Reached(Deployed)
		if s.plaintext != "" || j.PlaintextStored || handedOut {
			if j.PlaintextStored && !handedOut {
				if _, err := s.r.Secrets.Get(secret.KeyName(j.New.ID)); err != nil {
					if !errors.Is(err, secret.ErrNotFound) {
						return fmt.Errorf("reading the new key from the keyring: %w", err)
					}
					s.rep.Warn(fmt.Sprintf("the plaintext of the new key %s is gone from the keyring; revoking it and issuing another", j.New.Prefix))
					return s.abandonAndRecreate(ctx, *j.New)
				}
			}
			return nil
		}
		// Created by an earlier run without a keyring that stopped before
		// deploying: the plaintext died with it.
		s.rep.Warn(fmt.Sprintf("the plaintext of the new key %s was lost with the run that created it; revoking it and issuing another", j.New.Prefix))
		return s.abandonAndRecreate(ctx, *j.New)
	}
	s.announce()
	if j.Pending != nil && s.now().Sub(j.Pending.At) > replayWindow {
		return s.recoverExpiredCreate(ctx)
	}
	if j.Pending != nil {
		ck, err := s.createKey(ctx, client.CreateKeyRequest{Name: j.Pending.Name, Scopes: j.Pending.Scopes, Description: j.Pending.Description}, j.Pending.IdempotencyKey)
		if err != nil {
			if permanent(err) {
				return s.createRefused(err)
			}
			return fmt.Errorf("recovering the answer of an earlier create: %w", err)
		}
		if ck.Replayed {
			s.rep.Warn(fmt.Sprintf("an earlier run created %s but its answer was lost, and with it the plaintext; revoking it", ck.APIKey.Prefix))
			return s.abandonAndRecreate(ctx, ref.Of(ck.APIKey))
		}
		// The first attempt never reached the server: this one is fresh.
		return s.stored(ctx, ck)
	}
	if err := s.probe(); err != nil {
		return err
	}
	return s.create(ctx)
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
func (s *session) recoverExpiredCreate(ctx context.Context) error {
	p := s.j.Pending
	s.rep.Warn(fmt.Sprintf("an earlier create of %q (%s ago) is too old for the server to replay; looking for the key it may have made", p.Name, s.now().Sub(p.At).Round(time.Minute)))
	keys, err := s.r.API.ListKeys(ctx, client.ListKeysOptions{Status: client.StatusActive, PageSize: pageSize})
	if err != nil {
		return fmt.Errorf("looking for the key of an earlier create: %w", err)
	}
	for _, k := range keys {
		if k.Name != p.Name || !strings.EqualFold(k.CreatedBy.Email, s.actor.Email) || k.CreatedAt.Before(p.At.Add(-time.Minute)) {
			continue
		}
		kr := ref.Of(k)
		if _, err := s.revokeKey(ctx, k.ID); err != nil {
			return fmt.Errorf("revoking %s, made by an earlier create whose answer was lost: %w", k.Prefix, err)
		}
		s.j.Abandoned = append(s.j.Abandoned, kr)
		s.logAbandoned(kr, "plaintext lost, create too old to replay")
		s.rep.Warn(fmt.Sprintf("revoked %s: an earlier run created it but lost its answer, and with it the plaintext", k.Prefix))
	}
	s.j.reset()
	if err := s.save(); err != nil {
		return err
	}
	if err := s.probe(); err != nil {
		return err
	}
	return s.create(ctx)
}

// probe proves the keyring works before a create (Rotator.Probe: a fleet
// proves it once; a later failure to store is still caught by create,
// which revokes that key at once).
func (s *session) probe() error {
	probe := s.r.Probe
	if probe == nil {
		probe = func() error { return secret.Probe(s.r.Secrets) }
	}
	if err := probe(); err != nil {
		if len(s.targets()) == 0 && !s.opts.PrintSecret {
			return fmt.Errorf("%w (%v)", ErrNoKeyring, err)
		}
		if err := s.finishableElsewhere(err); err != nil {
			return err
		}
		s.keyless = true
		s.rep.Warn("no working keyring (" + err.Error() + "): the new key's plaintext goes only to the deploy target or stdout, and is lost if this run stops before")
		return nil
	}
	return nil
}

func (s *session) create(ctx context.Context) error {
	j := s.j
	name, err := s.successorName(ctx)
	if err != nil {
		return err
	}
	// The lineage goes where every machine sees it: the key's description.
	j.Pending = &PendingCreate{IdempotencyKey: client.NewIdempotencyKey(), Name: name, Scopes: s.old.Scopes, Description: s.description(), At: s.now()}
	j.advance(Started, s.now())
	// The idempotency key is on disk before the request leaves, so an answer
	// lost to a crash can be found again.
	if err := s.save(); err != nil {
		return err
	}
	ck, err := s.createKey(ctx, client.CreateKeyRequest{Name: name, Scopes: s.old.Scopes, Description: j.Pending.Description}, j.Pending.IdempotencyKey)
	if err != nil {
		if permanent(err) {
			return s.createRefused(err)
		}
		return fmt.Errorf("creating the new key: %w (run the same command again: the create is recovered, never duplicated)", err)
	}
	if err := s.r.at("create-answered"); err != nil {
		return err
	}
	if ck.Replayed {
		return s.abandonAndRecreate(ctx, ref.Of(ck.APIKey))
	}
	return s.stored(ctx, ck)
}

// permanent says the server refused a create for good: a 4xx other than
// 408, 409 (the first attempt still in flight) and 429. No key was made.
func permanent(err error) bool {
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode < 400 || ae.StatusCode > 499 {
		return false
	}
	switch ae.StatusCode {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return false
	}
	return true
}

// createRefused forgets a create the server refused for good, so no run
// replays the same refusal; a journal that holds nothing else goes too, so
// keys status shows no rotation waiting on it.
func (s *session) createRefused(err error) error {
	s.j.reset()
	var serr error
	if len(s.j.Abandoned) == 0 && !s.j.oldRevoked() {
		serr = s.js.remove(s.j.Old.ID)
	} else {
		serr = s.save()
	}
	if serr != nil {
		return serr
	}
	return fmt.Errorf("the server refused to create the new key: %w. Nothing was created and nothing is left pending: "+
		"the same command as it stands would be refused again", err)
}

func (s *session) successorName(ctx context.Context) (string, error) {
	// The walk's last listing, from reconcile just before, serves: a name
	// taken since then is a successor made at the same moment, which the
	// race rule settles after the create whatever the names.
	all := s.listed
	if all == nil {
		var err error
		if all, err = s.r.listKeys(ctx, time.Time{}); err != nil {
			return "", fmt.Errorf("listing keys to name the new one: %w", err)
		}
	}
	taken := map[string]bool{}
	for _, k := range all {
		taken[k.Name] = true
	}
	name := lineage.SuccessorName(s.old.Name, s.now().Year(), func(s string) bool { return taken[s] })
	// Asked anyway, the server answers 422 to every run alike: nothing a
	// rerun could recover.
	if n := utf8.RuneCountInString(name); n > maxNameLen {
		return "", usageErrorf("the new key would be named %q…, %d characters, and BOS allows at most %d: nothing was created. "+
			"Rename %s (%s) to at most %d characters in the BOS settings, then run the same command again",
			string([]rune(name)[:40]), n, maxNameLen, s.old.Prefix, s.old.ID, maxNameLen-len(" (2026-10)"))
	}
	return name, nil
}

// maxNameLen is the longest key name BOS accepts, in characters.
const maxNameLen = 200

// stored puts a fresh plaintext in the keyring; a key whose plaintext cannot
// be stored is revoked at once.
func (s *session) stored(ctx context.Context, ck *client.CreatedKey) error {
	j := s.j
	kr := ref.Of(ck.APIKey)
	if !s.keyless {
		if err := s.r.Secrets.Set(secret.KeyName(ck.APIKey.ID), ck.Plaintext); err != nil {
			_, rerr := s.revokeKey(ctx, ck.APIKey.ID)
			j.Pending = nil
			if rerr == nil {
				j.Abandoned = append(j.Abandoned, kr)
				j.reset()
				s.logAbandoned(kr, "plaintext could not be stored in the keyring")
			}
			if serr := s.save(); serr != nil {
				return serr
			}
			if rerr != nil {
				return fmt.Errorf("storing the new key %s in the keyring failed (%v), and revoking it failed too (%v): revoke it now with plana keys revoke %s --force", kr.Prefix, err, rerr, kr.ID)
			}
			return fmt.Errorf("storing the new key %s in the keyring failed: %w; the key was revoked at once, nothing is left behind", kr.Prefix, err)
		}
	}
	s.plaintext = ck.Plaintext
	j.Pending, j.New, j.NewCreatedAt, j.PlaintextStored = nil, &kr, ck.APIKey.CreatedAt, !s.keyless
	j.advance(Created, s.now())
	if err := s.save(); err != nil {
		return err
	}
	s.log(rotlog.EventCreated, "")
	s.rep.Info(fmt.Sprintf("created %s (%s)", kr.Name, kr.Prefix))
	if s.opts.PrintSecret && s.opts.SecretOut != nil {
		if _, err := fmt.Fprintln(s.opts.SecretOut, ck.Plaintext); err != nil {
			return err
		}
	}
	return s.r.at("created")
}

func (s *session) logAbandoned(kr ref.Key, why string) {
	saved := s.j.New
	s.j.New = &kr
	s.log(rotlog.EventAbandoned, why)
	s.j.New = saved
}

// abandonAndRecreate revokes a successor whose plaintext is lost, then
// creates another with a fresh idempotency key.
func (s *session) abandonAndRecreate(ctx context.Context, kr ref.Key) error {
	j := s.j
	if _, err := s.revokeKey(ctx, kr.ID); err != nil {
		return fmt.Errorf("revoking %s, whose plaintext was lost: %w", kr.Prefix, err)
	}
	if err := s.r.Secrets.Delete(secret.KeyName(kr.ID)); err != nil && !errors.Is(err, secret.ErrNotFound) && !s.keyless {
		s.rep.Warn("could not delete the abandoned key from the keyring: " + err.Error())
	}
	j.Abandoned = append(j.Abandoned, kr)
	j.reset()
	if err := s.save(); err != nil {
		return err
	}
	s.logAbandoned(kr, "plaintext lost")
	if err := s.probe(); err != nil {
		return err
	}
	return s.create(ctx)
}
