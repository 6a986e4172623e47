//go:build linux

package secret

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// listen makes a real Unix socket at path, as a running dbus-daemon has.
func listen(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

func TestSessionBusAddress(t *testing.T) {
	runtime, empty := t.TempDir(), t.TempDir()
	listen(t, filepath.Join(runtime, "bus"))
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	for _, c := range []struct {
		name    string
		env     map[string]string
		runUser string
		want    string
		ok      bool
	}{
		{"the variable", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}, empty, "unix:path=/x", true},
		{"XDG_RUNTIME_DIR's socket", map[string]string{"XDG_RUNTIME_DIR": runtime}, empty, "unix:path=" + runtime + "/bus", true},
		{"autolaunch: asks for dbus-launch", map[string]string{"DBUS_SESSION_BUS_ADDRESS": "autolaunch:", "XDG_RUNTIME_DIR": empty}, empty, "", false},
		{"nothing: cron, ssh, CI", map[string]string{"XDG_RUNTIME_DIR": empty}, empty, "", false},
		{"a relative XDG_RUNTIME_DIR is ignored", map[string]string{"XDG_RUNTIME_DIR": "run"}, empty, "", false},
		{"/run/user/UID/bus, where godbus looks", nil, runtime, "unix:path=" + runtime + "/bus", true},
	} {
		got, ok := sessionBusAddress(env(c.env), c.runUser)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}

	// A plain file named bus is no bus; godbus's dbus-session file names one.
	file := t.TempDir()
	if err := os.WriteFile(filepath.Join(file, "bus"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := sessionBusAddress(env(map[string]string{"XDG_RUNTIME_DIR": file}), empty); ok {
		t.Error("a regular file was taken for the bus socket")
	}
	if err := os.WriteFile(filepath.Join(file, "dbus-session"), []byte("DBUS_SESSION_BUS_ADDRESS=unix:abstract=/tmp/dbus-x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, ok := sessionBusAddress(env(nil), file); !ok || got != "unix:abstract=/tmp/dbus-x" {
		t.Errorf("dbus-session file: got %q, %v", got, ok)
	}
}

// With no session bus, every keyring call is unavailable at once and says
// why, and the address godbus would read stays unset. The real-process
// proof that no dbus-daemon is left behind is e2e/testdata/no_keyring.txtar.
func TestNoSessionBusIsUnavailable(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if _, err := os.Stat(filepath.Join("/run/user", strconv.Itoa(os.Getuid()), "bus")); err == nil {
		t.Skip("this machine has a session bus at /run/user/UID/bus")
	}
	s := Keyring{}
	_, err := s.Get("token:default")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errNoSessionBus) {
		t.Fatalf("Get: err = %v, want ErrUnavailable for want of a session bus", err)
	}
	for _, err := range []error{s.Set("token:default", "v"), s.Delete("token:default")} {
		if !errors.Is(err, errNoSessionBus) {
			t.Errorf("err = %v, want errNoSessionBus", err)
		}
	}
	if v := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); v != "" {
		t.Errorf("DBUS_SESSION_BUS_ADDRESS = %q after a failed lookup", v)
	}
}
