package emulator

import (
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
