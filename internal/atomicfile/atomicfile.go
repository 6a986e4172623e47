// Package atomicfile replaces a file's contents all at once: a reader, or
// the next run after a crash, sees the old file or the new one, never half
// of either. Journals, the config, env files and calendars go through it.
//
// The new version is staged in the target's own directory, never in $TMPDIR:
// a kill between the write and the rename would otherwise leave a copy of a
// secret in /tmp. The directory is synced after the rename, so the rename
// itself survives a power cut.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data at exactly perm, whatever the umask and
// whatever the mode of the file it replaces: a state file plana owns must
// not inherit a looser mode from a copy.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm, nil)
}

// Replace replaces path with data, keeping the owner, the group and the
// mode of the file it replaces: a service reading an env file through its
// group must still read the new version, even when plana runs as root. A
// file that does not exist yet is created at perm.
func Replace(path string, data []byte, perm fs.FileMode) error {
	keep, err := attrsOf(path)
	if err != nil {
		return err
	}
	return writeFile(path, data, perm, keep)
}

// CheckReplace reports, without changing path, why Replace could not give
// the new version path's owner, group and mode: a directory plana may not
// create files in, or an owner it may not give away. It tries for real, on
// an empty file next to path that it removes again, because only the system
// knows (root squashed on NFS, a group the user has left, a filesystem
// without owners).
func CheckReplace(path string) error {
	keep, err := attrsOf(path)
	if err != nil || keep == nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".plana-check-*")
	if err != nil {
		return fmt.Errorf("plana writes the new version next to it and renames it over, but cannot create a file in %s (%v): make the directory writable for %s, or run plana as the file's owner",
			dir, unwrapPath(err), currentUser())
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return keep.apply(f)
}

// attrs is what Replace keeps of the file it replaces.
type attrs struct {
	mode     fs.FileMode
	uid, gid int // -1 where the system has no owners
}

func attrsOf(path string) (*attrs, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	uid, gid := owner(fi)
	return &attrs{mode: fi.Mode().Perm(), uid: uid, gid: gid}, nil
}

// unwrapPath drops the path from an *fs.PathError, for messages that name
// the path already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// SyncDir makes the creation, removal or renaming of a file in dir survive a
// power cut; a file's own fsync does not cover its directory entry.
func SyncDir(dir string) error { return syncDir(dir) }
