package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// writeFile on Windows, where renameio does not build: a temporary file in
// the same directory, flushed, then moved over path. os.Rename is
// MoveFileEx with MOVEFILE_REPLACE_EXISTING, which replaces in one step on
// one volume. Windows has no mode bits beyond read-only, so perm is only
// applied as far as os.Chmod can.
func writeFile(path string, data []byte, perm fs.FileMode) error {
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
	return os.Rename(tmp, path)
}
