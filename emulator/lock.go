package emulator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDatabaseInUse is returned by New when another process (or another
// Server of this one) has the database open.
var ErrDatabaseInUse = errors.New("database in use")

// One emulator per database, because a revoke is seen at once only by the
// process that made it (each keeps its verified keys in memory). Two locks
// make it so, whatever name reaches the file:
//
//   - SQLite's own, on the database file itself: openDB sets locking_mode
//     EXCLUSIVE before the first access, so the connection takes an exclusive
//     lock on the file's identity and holds it until it closes. A symlink, a
//     hard link or another relative path all reach the same file and are
//     refused (SQLITE_BUSY), in another process or in this one. It works on
//     every platform SQLite does, where a lock of our own on the database
//     file would meet SQLite's (on BSD and macOS flock and fcntl locks
//     conflict; on Windows locks are mandatory).
//   - A lock file, DB.lock beside the file its name resolves to, holding the
//     owner's pid, so that the refusal can name it: it catches the same path,
//     a symlink and a relative path before SQLite is touched. A hard link
//     (another name for the same inode) has a lock file of its own, and only
//     SQLite's lock refuses it.
//
// The kernel drops both when their process dies, so a crash leaves nothing
// to clean up.

// lockDB takes the database's lock file for the life of the Server.
func lockDB(path string) (*flock.Flock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("database directory: %w", err)
	}
	real := resolve(path)
	lockPath := real + ".lock"
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
		name := path
		if real != path {
			name = fmt.Sprintf("%s (%s)", path, real)
		}
		return nil, fmt.Errorf("%w: %s is open in %s (it holds %s); %s", ErrDatabaseInUse, name, owner, lockPath, oneProcess)
	}
	if err := os.WriteFile(lockPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("writing %s: %w", lockPath, err)
	}
	return l, nil
}

const oneProcess = "one bos-emulator per database, so that every revoke is seen at once: stop that one, or use another database file"

// resolve returns path made absolute with every symlink resolved, that of
// its directory when the file itself does not exist yet.
func resolve(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(d, filepath.Base(abs))
	}
	return abs
}

// inUse turns SQLite's refusal of a database another connection holds
// exclusively into ErrDatabaseInUse.
func inUse(path string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY {
		return fmt.Errorf("%w: %s is open in another bos-emulator under another name for the same file (a hard link?); %s", ErrDatabaseInUse, path, oneProcess)
	}
	return err
}
