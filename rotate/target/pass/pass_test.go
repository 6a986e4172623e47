package pass_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plana-cli/plana/internal/storetest"
	"github.com/plana-cli/plana/rotate/target/pass"
)

// TestPassSlots walks both slots through a rotation against a real pass
// and gpg: deploy beside the old key, finalize, the log line under the key,
// and everything else in the store untouched.
func TestPassSlots(t *testing.T) {
	p := storetest.PassStore(t)
	t.Setenv("PLANA_TOKEN", storetest.NewKey(t))
	spy := storetest.Spy(t, "pass", "gpg")
	ctx := context.Background()
	oldKey, newKey := storetest.NewKey(t), storetest.NewKey(t)
	p.Insert(t, "ci/sync/PLANA_KEY", oldKey+"\nurl: https://bos.example.com\n")
	p.Insert(t, "ci/sync/DB_PASSWORD", "hunter2hunter2\n")
	p.Insert(t, "ci/other/PLANA_KEY_NEW", "untouched\n")

	s, err := pass.New("ci/sync")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Rotation(t, s, "pass:ci/sync", oldKey, newKey, nil)
	// finalize kept the old key's notes under the new key.
	if got := p.Show(t, "ci/sync/PLANA_KEY"); got != newKey+"\nurl: https://bos.example.com\n" {
		t.Error("finalize did not keep the lines under the key")
	}
	line := "key pa_test_AB7K2XYZ (Nightly stock sync (2025)) rotated to pa_test_CD8L3ABC on 2026-12-04 by ana@example.com"
	if err := s.Annotate(ctx, "PLANA_KEY", line); err != nil {
		t.Fatal(err)
	}
	if got := p.Show(t, "ci/sync/PLANA_KEY"); got != newKey+"\nurl: https://bos.example.com\n"+line+"\n" {
		t.Errorf("after Annotate the entry's lines under the key are %q", got[strings.Index(got, "\n"):])
	}
	storetest.WantSlots(t, s, map[string]string{"PLANA_KEY": newKey})

	// abort-like: removing an absent entry is no error.
	if err := s.Put(ctx, nil, "PLANA_KEY_NEW"); err != nil {
		t.Fatal(err)
	}
	if got := p.Show(t, "ci/sync/DB_PASSWORD"); got != "hunter2hunter2\n" {
		t.Error("another entry under the path changed")
	}
	if got := p.Show(t, "ci/other/PLANA_KEY_NEW"); got != "untouched\n" {
		t.Error("an entry under another path changed")
	}
	storetest.AssertSpiedClean(t, spy)
}

func TestPassAbsentAndBroken(t *testing.T) {
	p := storetest.PassStore(t)
	ctx := context.Background()
	s, err := pass.New("nothing/here")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "PLANA_KEY", "PLANA_KEY_NEW")
	if err != nil || len(got) != 0 {
		t.Fatalf("an empty path read as %d entries, %v; want none and no error", len(got), err)
	}
	if err := s.Annotate(ctx, "PLANA_KEY", "a note"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a note on an absent entry: %v", err)
	}
	if err := s.Put(ctx, map[string]string{"PLANA_KEY": "two\nlines"}); err == nil {
		t.Error("a value with a newline was written")
	}

	// The gpg key gone: reading fails, saying what to check, and the
	// error holds no key.
	key := storetest.NewKey(t)
	p.Insert(t, "lost/PLANA_KEY", key+"\n")
	if err := os.RemoveAll(filepath.Join(p.GnupgHome, "private-keys-v1.d")); err != nil {
		t.Fatal(err)
	}
	lost, _ := pass.New("lost")
	_, err = lost.Get(ctx, "PLANA_KEY")
	if err == nil {
		t.Fatal("read an entry without the gpg key")
	}
	if !strings.Contains(err.Error(), "gpg key") {
		t.Errorf("the error does not say what to check: %v", err)
	}
	storetest.AssertNoKeys(t, "the error", err.Error())
}

func TestPassPaths(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := pass.New("ci/sync"); err == nil || !strings.Contains(err.Error(), "apt-get install pass") {
		t.Errorf("without pass on PATH: %v", err)
	}
	for _, bad := range []string{"", "/abs", "a/../b", "a//b", "..", "a/"} {
		if _, err := pass.New(bad); err == nil {
			t.Errorf("pass:%s was accepted", bad)
		}
	}
}

// Every write replaces an entry whole: a reader running pass show at any
// moment gets the old content or the new one, never half a gpg file.
func TestPassWritesAreWhole(t *testing.T) {
	storetest.PassStore(t)
	ctx := context.Background()
	s, err := pass.New("ci/sync")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{storetest.NewKey(t), storetest.NewKey(t)}
	if err := s.Put(ctx, map[string]string{"PLANA_KEY": keys[0]}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(failed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := s.Get(ctx, "PLANA_KEY")
			if err == nil && got["PLANA_KEY"] != keys[0] && got["PLANA_KEY"] != keys[1] {
				err = errors.New("read a value that was never written")
			}
			if err != nil {
				failed <- err
				return
			}
		}
	}()
	for i := range 30 {
		if err := s.Put(ctx, map[string]string{"PLANA_KEY": keys[i%2]}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-failed; err != nil {
		t.Fatalf("a reader during the writes: %v", err)
	}
}
