#!/usr/bin/env bash
# Runs "$@" with a working Secret Service: the caller's own when one answers
# and PLANA_TEST_OWN_KEYRING=1, otherwise a throwaway gnome-keyring inside a
# private D-Bus session, so tests never read or write the user's keyring.
set -euo pipefail
if [ "${PLANA_TEST_OWN_KEYRING:-}" = 1 ]; then
  exec "$@"
fi
if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
  # The daemon reads the login password from stdin; an empty keyring created
  # with "x" is unlocked for the whole session.
  exec dbus-run-session -- sh -c 'printf x | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec "$@"' sh "$@"
fi
echo "with-keyring: dbus-run-session or gnome-keyring-daemon missing; real-keyring tests will skip." >&2
echo "with-keyring: install them with: sudo apt-get install -y gnome-keyring dbus" >&2
exec "$@"
