package target

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/rotate/ref"
)

// Store holds named secret values, among them the two slots KeySlot and
// NewKeySlot: an env file, a Kubernetes Secret, an entry of a secrets
// manager. Every value it does not name is left as it is.
type Store interface {
	// Get returns the values of names that are set: a name not set is
	// absent from the map.
	Get(ctx context.Context, names ...string) (map[string]string, error)
	// Put sets the values of set and removes the names in unset, in one
	// write.
	Put(ctx context.Context, set map[string]string, unset ...string) error
}

// Slots is the target of a Store: deploy fills NewKeySlot beside KeySlot,
// finalize leaves the new key alone under KeySlot, abort empties
// NewKeySlot, and what it holds can be read back. Every write is read back
// and the slots' prefixes compared with what the step meant to leave: a
// store that took the write but gives back something else (a writer in
// between, a store that drops fields) fails the step that wrote, not the
// automation's next call.
type Slots struct {
	Spec  Spec
	Store Store
	// Where names the place in notes and errors; "": Spec.
	Where string
	// Warn hears what Check accepts with a warning; nil: nothing.
	Warn func(string)
}

func (t Slots) String() string { return t.Spec.String() }

func (t Slots) where() string {
	if t.Where != "" {
		return t.Where
	}
	return t.Spec.String()
}

// Readable is true: a store's slots are read back.
func (Slots) Readable() bool { return true }

// KeyToFinalize is true: the new key moves to KeySlot. The store gives it
// back, so any machine that can read the store can finalize it.
func (Slots) KeyToFinalize() bool { return true }

// Holds reads the slots for the key with prefix.
func (t Slots) Holds(ctx context.Context, prefix string) (bool, error) {
	h, err := t.Read(ctx)
	if err != nil {
		return false, err
	}
	return client.PrefixOf(h.Key) == prefix || client.PrefixOf(h.New) == prefix, nil
}

// Check refuses, before anything is created, a store deploy could not read
// (or, for a Store with a Check of its own, one that check refuses), and a
// store that is not this rotation's: one whose KeySlot holds another key
// than the one being rotated (or its successor, once finalized by hand),
// unless its NewKeySlot holds one of them. A store without KeySlot is
// accepted with a warning.
func (t Slots) Check(ctx context.Context, k Keys) error {
	if c, ok := t.Store.(interface{ Check(context.Context) error }); ok {
		if err := c.Check(ctx); err != nil {
			return err
		}
	}
	v, err := t.Store.Get(ctx, KeySlot, NewKeySlot)
	if err != nil {
		return err
	}
	cur := v[KeySlot]
	p, np := client.PrefixOf(cur), client.PrefixOf(v[NewKeySlot])
	switch {
	case cur == "":
		if t.Warn != nil {
			t.Warn(fmt.Sprintf("%s has no %s: plana cannot tell that it is the automation's file for %s (%s); it adds %s to it all the same", t.where(), KeySlot, k.Old.Prefix, k.Old.Name, NewKeySlot))
		}
		return nil
	case p != "" && (p == k.Old.Prefix || p == k.New.Prefix):
		return nil
	case np != "" && (np == k.Old.Prefix || np == k.New.Prefix):
		// An earlier rotation deployed the key being rotated beside its own
		// predecessor and stopped before step 4 (an emergency left waiting
		// on a machine since lost), and this one may have deployed its
		// successor over it since: the automation's file all the same.
		return nil
	case p == "":
		return fmt.Errorf("%s holds a %s that is not a BOS key, where the key being rotated (%s, %s) should be: it is not this rotation's file; nothing was created. Pass the target that holds %s, or put %s there by hand first",
			t.where(), KeySlot, k.Old.Prefix, k.Old.Name, k.Old.Prefix, KeySlot)
	}
	return &OtherKeyError{Where: t.where(), Prefix: p, Old: k.Old}
}

// OtherKeyError is Check on a store whose KeySlot holds another key than
// the rotation's: it names that key by its prefix alone.
type OtherKeyError struct {
	Where  string  // the store, as notes name it
	Prefix string  // the prefix of the key it holds
	Old    ref.Key // the key being rotated
}

func (e *OtherKeyError) Error() string {
	return fmt.Sprintf("%s holds %s=%s…, another key than the one being rotated (%s, %s): it is another automation's file, or the wrong path; nothing was created. Pass the target that holds %s",
		e.Where, KeySlot, e.Prefix, e.Old.Prefix, e.Old.Name, e.Old.Prefix)
}

// Read returns the two slots.
func (t Slots) Read(ctx context.Context) (Held, error) {
	v, err := t.Store.Get(ctx, KeySlot, NewKeySlot)
	return Held{Key: v[KeySlot], New: v[NewKeySlot]}, err
}

// Deploy sets NewKeySlot to the new key, keeping KeySlot: deploying the
// same key again changes nothing.
func (t Slots) Deploy(ctx context.Context, k Keys) (string, error) {
	key, err := plaintext(ctx, k)
	if err != nil {
		return "", err
	}
	v, err := t.Store.Get(ctx, NewKeySlot)
	if err != nil {
		return "", err
	}
	if v[NewKeySlot] == key {
		return "", nil
	}
	if err := t.Store.Put(ctx, map[string]string{NewKeySlot: key}); err != nil {
		return "", err
	}
	if err := t.readBack(ctx, "deploy", func(h Held) string {
		return slotIs(NewKeySlot, h.New, k.New.Prefix)
	}); err != nil {
		return "", err
	}
	return "deployed to " + t.String(), nil
}

// Finalize leaves only the new key, under KeySlot. It refuses a store whose
// NewKeySlot holds another key, which would mean someone else's rotation is
// under way.
func (t Slots) Finalize(ctx context.Context, k Keys) (string, error) {
	key, err := plaintext(ctx, k)
	if err != nil {
		return "", err
	}
	v, err := t.Store.Get(ctx, KeySlot, NewKeySlot)
	if err != nil {
		return "", err
	}
	cur, hasCur := v[KeySlot]
	next, hasNext := v[NewKeySlot]
	switch {
	case hasNext && next != key:
		return "", fmt.Errorf("%s: %s holds another key than the new one; fix it by hand or deploy again with plana keys deploy", t.where(), NewKeySlot)
	case !hasNext && hasCur && cur == key:
		return "", nil
	case !hasNext && !hasCur:
		return "", fmt.Errorf("%s has neither %s nor %s: deploy the new key first (plana keys deploy)", t.where(), KeySlot, NewKeySlot)
	}
	if err := t.Store.Put(ctx, map[string]string{KeySlot: key}, NewKeySlot); err != nil {
		return "", err
	}
	if err := t.readBack(ctx, "finalize", func(h Held) string {
		if bad := slotIs(KeySlot, h.Key, k.New.Prefix); bad != "" {
			return bad
		}
		return slotIs(NewKeySlot, h.New, "")
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s now holds only the new key, under %s", t.where(), KeySlot), nil
}

// Abort takes NewKeySlot out when it holds the new key; KeySlot stays.
func (t Slots) Abort(ctx context.Context, k Keys) (string, error) {
	v, err := t.Store.Get(ctx, NewKeySlot)
	if err != nil {
		return "", err
	}
	if nv, ok := v[NewKeySlot]; !ok || client.PrefixOf(nv) != k.New.Prefix {
		return "", nil
	}
	if err := t.Store.Put(ctx, nil, NewKeySlot); err != nil {
		return "", err
	}
	if err := t.readBack(ctx, "abort", func(h Held) string {
		if client.PrefixOf(h.New) == k.New.Prefix {
			return fmt.Sprintf("%s still holds the new key %s", NewKeySlot, k.New.Prefix)
		}
		return ""
	}); err != nil {
		return "", err
	}
	return fmt.Sprintf("took %s (%s) out of %s", NewKeySlot, k.New.Prefix, t.where()), nil
}

// readBack reads the slots after step's write; wrong says what is wrong
// with them, "" when nothing is. Values are named by prefix only.
func (t Slots) readBack(ctx context.Context, step string, wrong func(Held) string) error {
	h, err := t.Read(ctx)
	if err != nil {
		return fmt.Errorf("%s: reading it back after the %s: %w", t.where(), step, err)
	}
	if bad := wrong(h); bad != "" {
		return fmt.Errorf("%s: read back after the %s, %s: someone or something else writes there too; check the store, then run the same command again", t.where(), step, bad)
	}
	return nil
}

// slotIs says what is wrong with slot holding v when it should hold the
// key with prefix (prefix "": nothing), "" when nothing is.
func slotIs(slot, v, prefix string) string {
	switch {
	case prefix == "" && v != "":
		return fmt.Sprintf("%s still holds %s", slot, describe(v))
	case prefix != "" && v == "":
		return fmt.Sprintf("%s is empty instead of holding the new key %s", slot, prefix)
	case prefix != "" && client.PrefixOf(v) != prefix:
		return fmt.Sprintf("%s holds %s instead of the new key %s", slot, describe(v), prefix)
	}
	return ""
}

// describe names a slot's value without showing it.
func describe(v string) string {
	if p := client.PrefixOf(v); p != "" {
		return "the key " + p
	}
	return "a value that is not a BOS key"
}

// plaintext is the new key's plaintext, fit for a slot: one line, not empty.
func plaintext(ctx context.Context, k Keys) (string, error) {
	key, err := k.Plaintext(ctx)
	if err != nil {
		return "", err
	}
	if key == "" || strings.ContainsAny(key, "\r\n\x00") {
		return "", errors.New("refusing to write an empty value or one with a line break into a deploy target")
	}
	return key, nil
}
