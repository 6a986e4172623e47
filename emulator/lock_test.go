package emulator

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// One emulator per database: a second is refused, naming the process that
// holds the database and the lock file, until the first closes.
func TestSecondServerOnOneDatabaseIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bos.db")
	first, err := New(Config{DBPath: path, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{DBPath: path, BcryptCost: bcrypt.MinCost})
	if !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("a second emulator on the database: %v, want ErrDatabaseInUse", err)
	}
	for _, want := range []string{path, path + ".lock", "process " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not name %q", err, want)
		}
	}
	if fi, err := os.Stat(path + ".lock"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(Config{DBPath: path, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
	// In memory there is nothing to share.
	for range 2 {
		m, err := New(Config{DBPath: ":memory:", BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
	}
}

// The database holds every key's hash and who called from where: it, its
// -wal and -shm files and the lock are the owner's alone, in a directory
// that is too.
func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bos-emulator")
	path := filepath.Join(dir, "bos.db")
	s, err := New(Config{DBPath: path, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.SeedDemo(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600, path + ".lock": 0o600}
	for f, mode := range want {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(f), fi.Mode().Perm(), mode)
		}
	}
}
