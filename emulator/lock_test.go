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

// The lock follows the file, not the name: a symlink, a hard link or a
// relative path to a database in use is refused too, so that no two servers
// ever share one database and each miss the other's revokes.
func TestServerThroughAnotherNameIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bos.db")
	first, err := New(Config{DBPath: path, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := os.Symlink(path, filepath.Join(dir, "symlink.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "elsewhere"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, filepath.Join(dir, "elsewhere", "hardlink.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "linked-dir")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(dir, "elsewhere"))
	for _, name := range []string{
		filepath.Join(dir, "symlink.db"),
		filepath.Join(dir, "elsewhere", "hardlink.db"),
		filepath.Join(dir, "linked-dir", "bos.db"),
		filepath.Join("..", "bos.db"),
		"hardlink.db",
	} {
		s, err := New(Config{DBPath: name, BcryptCost: bcrypt.MinCost})
		if err == nil {
			s.Close()
			t.Errorf("%s: a second server opened the database in use", name)
			continue
		}
		if !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), "one bos-emulator per database") {
			t.Errorf("%s: %v, want ErrDatabaseInUse saying why", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	// The refusals left the first server whole: it still writes.
	if _, err := first.CreateUser(context.Background(), "ana@example.com", "admin", nil); err != nil {
		t.Fatalf("the first server after the refusals: %v", err)
	}
}

// The database holds every key's hash and who called from where: it, its
// -wal file and the lock are the owner's alone, in a directory that is too.
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
	want := map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + ".lock": 0o600}
	// Held exclusively, the database keeps its WAL index in memory.
	if _, err := os.Stat(path + "-shm"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a -shm file beside a database held exclusively: %v", err)
	}
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
