//go:build !windows

package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

func writeFile(path string, data []byte, perm fs.FileMode, st *staging) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// The directory is held open: the new version is staged, checked and
	// renamed in the directory opened here, whatever its path names
	// meanwhile.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	// Not renameio.WriteFile: it keeps the mode of the file it replaces.
	// While the data is written the file is 0600 and ours; the owner and
	// the mode to keep are given to it just before the rename.
	staged := perm
	if st != nil {
		staged = 0o600
	}
	removeLeftovers(path)
	t, err := renameio.NewPendingFile(base, renameio.WithRoot(root), renameio.WithStaticPermissions(staged))
	if err != nil {
		return err
	}
	defer t.Cleanup()
	if _, err := t.Write(data); err != nil {
		return err
	}
	if st != nil {
		if err := st.keep.apply(t.File); err != nil {
			return err
		}
		if beforeRename != nil {
			beforeRename(path)
		}
		now, err := root.Lstat(base)
		if err != nil {
			return err
		}
		if err := st.same(now); err != nil {
			return err
		}
	}
	if err := t.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return syncDir(dir)
}

// openNoFollow opens path for reading without following a symlink at its
// last component: O_NOFOLLOW makes that an error (ELOOP; EMLINK on the
// BSDs), told apart from other errors by a look at the path.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK) {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, &fs.PathError{Op: "open", Path: path, Err: ErrSymlink}
		}
	}
	return nil, err
}

// removeLeftovers deletes what a write of path killed before its rename left
// beside it: renameio stages ".<name><digits>" in the target's directory, and
// for an env file that stray copy holds a plaintext. Writers of one file are
// serialised by the rotation's lock, so a stray is never a write under way.
func removeLeftovers(path string) {
	dir, base := filepath.Split(path)
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+"[0-9]*"))
	for _, m := range matches {
		if isDigits(strings.TrimPrefix(filepath.Base(m), "."+base)) {
			_ = os.Remove(m)
		}
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// apply gives f the kept owner, group and mode, saying why it cannot.
func (a *attrs) apply(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	uid, gid := owner(fi)
	if uid != a.uid || gid != a.gid {
		if err := f.Chown(a.uid, a.gid); err != nil {
			as := "root"
			if a.uid != 0 {
				as = userName(a.uid) + " or as root"
			}
			return fmt.Errorf("it belongs to %s:%s, and %s cannot give the new version that owner (%v): run plana as %s",
				userName(a.uid), groupName(a.gid), currentUser(), unwrapPath(err), as)
		}
	}
	if err := f.Chmod(a.mode); err != nil {
		return fmt.Errorf("cannot give the new version its mode %04o (%v)", a.mode, unwrapPath(err))
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

func owner(fi fs.FileInfo) (uid, gid int) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, -1
	}
	return int(st.Uid), int(st.Gid)
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

func currentUser() string {
	return userName(os.Geteuid())
}

// ExposedDir returns the first directory, from path's own up to the root,
// that every user may write and that has no sticky bit, with its mode; ""
// when there is none. In such a directory anyone can rename path (or the
// directory below it on the way) away and put a file of their own in its
// place. The directories are walked as path names them and as its symlinks
// resolve: both chains hold entries someone could swap.
func ExposedDir(path string) (string, fs.FileMode, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", 0, err
	}
	dirs := ancestors(filepath.Dir(abs))
	if real, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil && real != filepath.Dir(abs) {
		dirs = append(dirs, ancestors(real)...)
	}
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			return "", 0, err
		}
		if m := fi.Mode(); m.Perm()&0o002 != 0 && m&fs.ModeSticky == 0 {
			return d, m, nil
		}
	}
	return "", 0, nil
}

// ancestors is dir and every directory above it, up to the root.
func ancestors(dir string) []string {
	out := []string{dir}
	for {
		up := filepath.Dir(dir)
		if up == dir {
			return out
		}
		out, dir = append(out, up), up
	}
}
