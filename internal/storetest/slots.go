package storetest

import (
	"context"
	"maps"
	"testing"
)

// Store is a secret store's client as a rotation sees it (rotate/target's
// Store, and the name it is written as in --to), declared here so that the
// stores' tests share Rotation without this package importing plana's.
type Store interface {
	Get(ctx context.Context, names ...string) (map[string]string, error)
	Put(ctx context.Context, set map[string]string, unset ...string) error
	String() string
}

// Rotation walks s's two slots through a rotation's writes, reading every
// one back: s is named name; PLANA_KEY holds oldKey to begin with; deploy
// puts newKey in PLANA_KEY_NEW beside it, then deployed runs (if not nil);
// finalize leaves newKey alone in PLANA_KEY.
func Rotation(t *testing.T, s Store, name, oldKey, newKey string, deployed func()) {
	t.Helper()
	ctx := context.Background()
	if s.String() != name {
		t.Errorf("String() = %q, want %q", s.String(), name)
	}
	WantSlots(t, s, map[string]string{"PLANA_KEY": oldKey})
	if err := s.Put(ctx, map[string]string{"PLANA_KEY_NEW": newKey}); err != nil {
		t.Fatal(err)
	}
	WantSlots(t, s, map[string]string{"PLANA_KEY": oldKey, "PLANA_KEY_NEW": newKey})
	if deployed != nil {
		deployed()
	}
	if err := s.Put(ctx, map[string]string{"PLANA_KEY": newKey}, "PLANA_KEY_NEW"); err != nil {
		t.Fatal(err)
	}
	WantSlots(t, s, map[string]string{"PLANA_KEY": newKey})
}

// WantSlots fails t unless PLANA_KEY and PLANA_KEY_NEW read back from s as
// want, an absent name being one s does not hold. It names no value.
func WantSlots(t *testing.T, s Store, want map[string]string) {
	t.Helper()
	got, err := s.Get(context.Background(), "PLANA_KEY", "PLANA_KEY_NEW")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s: Get gave %d values, want %d (or other values)", s, len(got), len(want))
	}
}
