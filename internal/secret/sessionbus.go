//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package secret

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
)

// errNoSessionBus says why no Secret Service can answer here.
var errNoSessionBus = errors.New("no D-Bus session bus here (DBUS_SESSION_BUS_ADDRESS is unset and there is no $XDG_RUNTIME_DIR/bus), " +
	"as under cron, ssh or CI; plana never starts one")

// needSessionBus makes sure the Secret Service client (zalando/go-keyring
// over godbus) only ever dials an existing session bus. When it finds no
// address, godbus runs dbus-launch (dbus-x11): that starts a dbus-daemon,
// and through it a gnome-keyring-daemon, which outlive plana, inherit its
// environment (PLANA_TOKEN with it), and cost every keyring call its
// timeout. So plana looks for the bus itself, where godbus does and in
// $XDG_RUNTIME_DIR, and hands godbus the address it found; with none, the
// keyring is unavailable at once.
func needSessionBus() error {
	addr, ok := sessionBusAddress(os.Getenv, filepath.Join("/run/user", strconv.Itoa(os.Getuid())))
	if !ok {
		return fmt.Errorf("%w (%w): %s", ErrUnavailable, errNoSessionBus, unavailableHint)
	}
	if usableAddress(os.Getenv("DBUS_SESSION_BUS_ADDRESS")) {
		return nil
	}
	// godbus reads the variable first; set, it never falls back to
	// dbus-launch. It sets the variable itself when it finds the bus.
	return os.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
}

// usableAddress: "autolaunch:" asks for dbus-launch, which is what plana
// never does.
func usableAddress(a string) bool { return a != "" && a != "autolaunch:" }

// sessionBusAddress finds the session bus: DBUS_SESSION_BUS_ADDRESS, else
// the socket $XDG_RUNTIME_DIR/bus, else godbus's own places under runUser
// (/run/user/UID): the socket "bus", or the file "dbus-session" that holds
// the address.
func sessionBusAddress(getenv func(string) string, runUser string) (string, bool) {
	if a := getenv("DBUS_SESSION_BUS_ADDRESS"); usableAddress(a) {
		return a, true
	}
	var dirs []string
	if d := getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		dirs = append(dirs, d)
	}
	for _, d := range append(dirs, runUser) {
		if st, err := os.Stat(filepath.Join(d, "bus")); err == nil && st.Mode().Type() == os.ModeSocket {
			return "unix:path=" + dbus.EscapeBusAddressValue(filepath.Join(d, "bus")), true
		}
	}
	data, err := os.ReadFile(filepath.Join(runUser, "dbus-session"))
	if err != nil {
		return "", false
	}
	a, ok := strings.CutPrefix(string(data), "DBUS_SESSION_BUS_ADDRESS=")
	a = strings.TrimRight(a, "\r\n")
	return a, ok && usableAddress(a)
}
