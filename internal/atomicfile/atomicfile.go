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
	"io"
	"io/fs"
	"math"
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
// file that does not exist yet is created at perm. It is Open, then
// File.Replace: a symlink at path is refused, not followed.
func Replace(path string, data []byte, perm fs.FileMode) error {
	f, err := Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return writeFile(path, data, perm, nil)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Replace(data)
}

// CheckReplace reports, without changing path, why Replace could not give
// the new version path's owner, group and mode (see File.CheckReplace). A
// file that does not exist yet passes.
func CheckReplace(path string) error {
	f, err := Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return f.CheckReplace()
}

// ErrSymlink is Open on a symlink: an atomic rename would replace the link,
// not the file it points to, and a link someone else placed would have plana
// write where they chose.
var ErrSymlink = errors.New("is a symlink")

// ErrNotRegular is Open on anything but a regular file.
var ErrNotRegular = errors.New("is not a regular file")

// ErrReplaced is File.Replace when the path no longer names the file that
// was opened: someone put another file there meanwhile.
var ErrReplaced = errors.New("was replaced by another file while plana was rewriting it")

// File is an existing file opened to be rewritten. What plana reads of it,
// checks and keeps (owner, group, mode) is the file it opened, never one
// the path names later: the open does not follow a symlink, the owner,
// group and mode come from the open descriptor, and Replace refuses to
// rename over a path that names another file by then.
type File struct {
	path string
	f    *os.File
	fi   fs.FileInfo
	keep *attrs
}

// Open opens the regular file at path to be rewritten. A symlink is
// refused (ErrSymlink), so is anything but a regular file (ErrNotRegular);
// a missing file's error matches fs.ErrNotExist.
func Open(path string) (*File, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	uid, gid := owner(fi)
	return &File{path: path, f: f, fi: fi, keep: &attrs{mode: fi.Mode().Perm(), uid: uid, gid: gid}}, nil
}

// Path is the path the file was opened at.
func (f *File) Path() string { return f.path }

// Mode is the opened file's permission bits, which Replace keeps.
func (f *File) Mode() fs.FileMode { return f.keep.mode }

// Owner is the opened file's owner and group, which Replace keeps; -1 where
// the system has no owners.
func (f *File) Owner() (uid, gid int) { return f.keep.uid, f.keep.gid }

// Read returns the opened file's content, read through its descriptor.
func (f *File) Read() ([]byte, error) {
	return io.ReadAll(io.NewSectionReader(f.f, 0, math.MaxInt64))
}

// Close closes the descriptor.
func (f *File) Close() error { return f.f.Close() }

// CheckReplace reports, without changing anything, why Replace could not
// give the new version the opened file's owner, group and mode: a directory
// plana may not create files in, or an owner it may not give away. It tries
// for real, on an empty file next to the file that it removes again,
// because only the system knows (root squashed on NFS, a group the user has
// left, a filesystem without owners).
func (f *File) CheckReplace() error {
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".plana-check-*")
	if err != nil {
		return fmt.Errorf("plana writes the new version next to it and renames it over, but cannot create a file in %s (%v): make the directory writable for %s, or run plana as the file's owner",
			dir, unwrapPath(err), currentUser())
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	return f.keep.apply(tmp)
}

// Replace writes data as the file's new version, with the opened file's
// owner, group and mode, and renames it over the path, unless the path
// names another file by then (ErrReplaced): the rewrite replaces the file
// that was read and checked, or nothing. A swap in the instant between that
// last look and the rename would put the new version in place of the other
// file, still with the opened file's owner and mode: its content reaches no
// one the opened file did not already admit.
func (f *File) Replace(data []byte) error {
	same := func(now fs.FileInfo) error {
		if !os.SameFile(f.fi, now) {
			return fmt.Errorf("%s %w: nothing was written", f.path, ErrReplaced)
		}
		return nil
	}
	return writeFile(f.path, data, 0o600, &staging{keep: f.keep, same: same})
}

// staging is what a rewrite of an existing file keeps of it, and the check
// that the path still names it just before the rename.
type staging struct {
	keep *attrs
	same func(now fs.FileInfo) error
}

// beforeRename, set by tests, runs after the new version is staged and
// before the path is looked at for the last time.
var beforeRename func(path string)

// attrs is what Replace keeps of the file it replaces.
type attrs struct {
	mode     fs.FileMode
	uid, gid int // -1 where the system has no owners
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
