package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// writeFile on Windows, where renameio does not build: a temporary file in
// the same directory, flushed, then moved over path. os.Rename is
// MoveFileEx with MOVEFILE_REPLACE_EXISTING, which replaces in one step on
// one volume. Windows has no mode bits beyond read-only and no owners
// os.Chown can set, so only the mode is kept, as far as os.Chmod can.
func writeFile(path string, data []byte, perm fs.FileMode, st *staging) error {
	if st != nil {
		perm = st.keep.mode
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	if st != nil {
		if beforeRename != nil {
			beforeRename(path)
		}
		now, err := os.Lstat(path)
		if err != nil {
			return err
		}
		if err := st.same(now); err != nil {
			return err
		}
	}
	return os.Rename(tmp, path)
}

// openNoFollow opens path for reading, refusing a symlink. Windows has no
// O_NOFOLLOW: the look before the open leaves a moment for a swap, which
// the identity check before the rename still catches.
func openNoFollow(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: ErrSymlink}
	}
	return os.Open(path)
}

// apply has nothing to check on Windows: the new file is the user's own.
func (a *attrs) apply(*os.File) error { return nil }

func owner(fs.FileInfo) (uid, gid int) { return -1, -1 }

func currentUser() string {
	if u := os.Getenv("USERNAME"); u != "" {
		return u
	}
	return "this user"
}

// syncDir is a no-op on Windows, where a directory cannot be opened for a
// flush and NTFS journals its directory entries itself.
func syncDir(string) error { return nil }

// ExposedDir finds nothing on Windows, where who may write a directory is
// its access control list, not mode bits.
func ExposedDir(string) (string, fs.FileMode, error) { return "", 0, nil }
