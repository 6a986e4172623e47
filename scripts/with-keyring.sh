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
  # with "x" is unlocked for the whole session. Its files and sockets live in
  # a directory of its own: in the user's data directory, every concurrent
  # session's daemon would share (and overwrite) one login.keyring, and
  # entries written in one session went missing in another.
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  mkdir -p "$dir/data" "$dir/run"
  chmod 700 "$dir/run"
  dbus-run-session -- sh -c 'printf x | XDG_DATA_HOME="$0/data" XDG_RUNTIME_DIR="$0/run" gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec "$@"' "$dir" "$@"
  exit
fi
echo "with-keyring: dbus-run-session or gnome-keyring-daemon missing; real-keyring tests will skip." >&2
echo "with-keyring: install them with: sudo apt-get install -y gnome-keyring dbus" >&2
exec "$@"
