// Package asnobody lets a test about file permissions run for real when the
// tests run as root.
package asnobody

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// env marks the child process Rerun starts.
const env = "PLANA_TEST_AS_NOBODY"

// Rerun runs the current test again in a child process as the user nobody,
// since root reads and writes any file whatever its mode, and reports
// whether it did (false: not root, or already the child). A test of an
// unreadable or unwritable file calls it first and returns when it is true:
// CI runs as root, and the case would otherwise never run there.
func Rerun(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv(env) == "1" {
		return false
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("root reads and writes any file, and there is no setpriv to run this test as nobody")
	}
	dir, err := os.MkdirTemp("", "plana-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The test binary's own directory is root's alone.
	bin := filepath.Join(dir, "test.bin")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// Anyone may create files here, and, with the sticky bit, remove only
	// their own: plana refuses a file in a directory where anyone could
	// swap it, and so must this one not be.
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "-test.run="+strings.Join(run, "/"), "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env+"=1", "TMPDIR="+dir, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+strings.Split(t.Name(), "/")[0]) || strings.Contains(string(out), "--- SKIP") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	return true
}

// GroupFile makes a file named name holding data, owned by root with the
// group nobody's (65534) and mode 0660, in a directory anyone may enter and
// write, with the sticky bit: nobody, rerun, may write the file through its
// group, but cannot give a replacement to root.
func GroupFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "plana-owned-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, name)
	for _, err := range []error{os.Chmod(dir, 0o777|os.ModeSticky), os.WriteFile(p, data, 0o600), os.Chown(p, 0, 65534), os.Chmod(p, 0o660)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return p
}
