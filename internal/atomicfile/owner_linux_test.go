//go:build linux

package atomicfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plana-cli/plana/internal/asnobody"
)

// nobody and nogroup, as the tests run them.
const nobody = 65534

// watchCreates reports every file created in or moved into dir from now on:
// inotify queues the events as the system calls happen, so reading them
// afterwards needs no wait.
func watchCreates(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		var names []string
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if errors.Is(err, syscall.EAGAIN) {
				return names
			}
			if err != nil {
				t.Fatal(err)
			}
			for b := buf[:n]; len(b) >= syscall.SizeofInotifyEvent; {
				l := binary.NativeEndian.Uint32(b[12:16])
				names = append(names, string(bytes.TrimRight(b[syscall.SizeofInotifyEvent:syscall.SizeofInotifyEvent+int(l)], "\x00")))
				b = b[syscall.SizeofInotifyEvent+int(l):]
			}
		}
	}
}

func TestReplaceKeepsOwnerGroupAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to nobody:nogroup needs root")
	}
	root := t.TempDir()
	tmpdir, dir := filepath.Join(root, "tmp"), filepath.Join(root, "app")
	for _, d := range []string{tmpdir, dir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// $TMPDIR on the same filesystem is where renameio stages by default.
	t.Setenv("TMPDIR", tmpdir)
	p := filepath.Join(dir, "automation.env")
	if err := os.WriteFile(p, []byte("PLANA_KEY=old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	created := watchCreates(t, tmpdir)
	if err := CheckReplace(p); err != nil {
		t.Fatalf("root can keep any owner, got %v", err)
	}
	if err := Replace(p, []byte("PLANA_KEY=new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != nobody || st.Gid != nobody || fi.Mode().Perm() != 0o640 {
		t.Errorf("after the rewrite the file is %d:%d at %04o, want nobody:nogroup (65534:65534) at 0640", st.Uid, st.Gid, fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(p); string(got) != "PLANA_KEY=new\n" {
		t.Errorf("contents %q", got)
	}
	if names := created(); len(names) > 0 {
		t.Errorf("files were created in $TMPDIR, where a kill would leave a secret behind: %q", names)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left next to the file: %d entries", len(ents))
	}

	// A file that does not exist yet is the caller's, at the mode it asks.
	fresh := filepath.Join(dir, "fresh.env")
	if err := Replace(fresh, []byte("PLANA_KEY=new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(fresh)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("a new file is %d at %04o, want root's at 0600", st.Uid, fi.Mode().Perm())
	}
}

// ownedFileVar passes the file root prepared to the rerun as nobody.
const ownedFileVar = "PLANA_TEST_ROOT_OWNED_FILE"

func TestReplaceRefusesAnOwnerItCannotKeep(t *testing.T) {
	p := os.Getenv(ownedFileVar)
	if p == "" {
		if os.Geteuid() != 0 {
			t.Skip("making a file someone else owns needs root")
		}
		p = asnobody.GroupFile(t, "automation.env", []byte("PLANA_KEY=old\n"))
		t.Setenv(ownedFileVar, p)
		if !asnobody.Rerun(t) {
			t.Fatal("the rerun as nobody did not happen")
		}
		fi, _ := os.Stat(p)
		got, _ := os.ReadFile(p)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || string(got) != "PLANA_KEY=old\n" {
			t.Errorf("the refused file changed: owner %d, contents %q", st.Uid, got)
		}
		return
	}
	// As nobody, who may write the file through its group but cannot give
	// a new file to root.
	err := CheckReplace(p)
	if err == nil || !strings.Contains(err.Error(), "belongs to root:nogroup") || !strings.Contains(err.Error(), "run plana as root") {
		t.Errorf("CheckReplace: want a refusal naming the owner and what to do, got %v", err)
	}
	if err := Replace(p, []byte("PLANA_KEY=new\n"), 0o600); err == nil {
		t.Error("Replace gave root's file to nobody")
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("the check or the refused write left files behind: %d entries", len(ents))
	}
}
