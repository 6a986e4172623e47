package emulator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
)

// ErrDatabaseInUse is returned by New when another process (or another
// Server of this one) has the database open.
var ErrDatabaseInUse = errors.New("database in use")

// lockDB takes the database's lock file, DB+".lock", for the life of the
// Server: one emulator per database, because a revoke is seen at once only
// by the process that made it (each keeps its verified keys in memory). The
// lock file holds the owner's pid, so that the refusal can name it. The
// kernel drops the lock when its process dies, so a crash leaves nothing to
// clean up.
func lockDB(path string) (*flock.Flock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("database directory: %w", err)
	}
	lockPath := path + ".lock"
	l := flock.New(lockPath, flock.SetPermissions(0o600))
	ok, err := l.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", lockPath, err)
	}
	if !ok {
		owner := "another process"
		if b, err := os.ReadFile(lockPath); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				owner = "process " + strconv.Itoa(pid)
			}
		}
		return nil, fmt.Errorf("%w: %s is open in %s (it holds %s); one bos-emulator per database, so that every revoke is seen at once: stop that one, or use another database file",
			ErrDatabaseInUse, path, owner, lockPath)
	}
	if err := os.WriteFile(lockPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("writing %s: %w", lockPath, err)
	}
	return l, nil
}
