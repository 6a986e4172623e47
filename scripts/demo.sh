#!/usr/bin/env bash
# make demo: a full, zero-downtime rotation of the seeded "Nightly stock sync
# (2025)" key against a local bos-emulator, while the example automation
# calls the API every second. Everything lives under .demo/ (binaries,
# database, config, state); nothing secret is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo
bin=$demo/bin
key="Nightly stock sync (2025)"

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi
die() { echo "demo: $*" >&2; exit 1; }

# A Secret Service answers on the session bus (or this is macOS, whose
# keychain needs no bus).
keyring_answers() {
  [ "$(uname -s)" = Darwin ] && return 0
  [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v dbus-send >/dev/null || return 1
  timeout 5 dbus-send --session --print-reply --dest=org.freedesktop.secrets \
    /org/freedesktop/secrets org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1
}

# The demo never uses your own keyring: it stores a management token and
# new keys' plaintexts, and would leave them there. On Linux it runs itself
# inside a D-Bus session of its own with a throwaway gnome-keyring, whose
# files and sockets live under .demo/keyring (not your data or runtime
# directories, where a second daemon would find or create your keyring).
if [ "$(uname -s)" != Darwin ] && [ -z "${PLANA_DEMO_IN_SESSION:-}" ]; then
  if ! command -v dbus-run-session >/dev/null || ! command -v gnome-keyring-daemon >/dev/null; then
    echo "demo: the demo runs in a keyring of its own, which needs dbus-run-session and gnome-keyring-daemon:" >&2
    echo "demo:   sudo apt-get install -y gnome-keyring dbus" >&2
    exit 1
  fi
  rm -rf "$demo/keyring"
  mkdir -p "$demo/keyring/data" "$demo/keyring/run"
  chmod 700 "$demo/keyring" "$demo/keyring/run"
  echo "demo: running in a D-Bus session and gnome-keyring of its own (.demo/keyring); your keyring is not touched." >&2
  export PLANA_DEMO_IN_SESSION=1
  # The daemon reads the new keyring's password from stdin.
  exec env XDG_DATA_HOME="$demo/keyring/data" XDG_RUNTIME_DIR="$demo/keyring/run" \
    dbus-run-session -- sh -c 'printf x | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec bash "$0"' "$0"
fi
if ! keyring_answers; then
  echo "demo: the demo's own gnome-keyring does not answer; see the messages above." >&2
  exit 1
fi

step "Building plana, bos-emulator and the example automation into .demo/bin"
mkdir -p "$bin"
go build -o "$bin/" ./cmd/plana ./cmd/bos-emulator ./examples/automation

# A fresh workspace every run; the binaries stay.
rm -rf "$demo/bos.db" "$demo/token" "$demo/automation.env" "$demo/config" "$demo/state" "$demo/data" "$demo"/*.log "$demo"/*.json
export XDG_CONFIG_HOME=$demo/config XDG_STATE_HOME=$demo/state XDG_DATA_HOME=$demo/data
# A profile of its own, so that on macOS the demo's token never replaces
# your real one in the keychain before the cleanup removes it.
export PLANA_PROFILE=demo
unset PLANA_TOKEN

pids=()
cleanup() {
  if [ "$(uname -s)" = Darwin ]; then
    # macOS has one keychain per user and no session to throw away: remove
    # what the demo put there, the token and the plaintext of every key
    # its journals name.
    for id in $(grep -rhoE '"id": *"key_[A-Za-z0-9]+"' "$demo/state" 2>/dev/null | sed 's/.*"\(key_[A-Za-z0-9]*\)"/\1/' | sort -u); do
      security delete-generic-password -s plana -a "key:$id" >/dev/null 2>&1 || true
    done
    security delete-generic-password -s plana -a token:demo >/dev/null 2>&1 || true
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Starting bos-emulator with the demo workspace (log: .demo/emulator.log)"
"$bin/bos-emulator" --listen 127.0.0.1:0 --db "$demo/bos.db" --dev-endpoints \
  --seed demo --token-file "$demo/token" --automation-env-file "$demo/automation.env" \
  2>"$demo/emulator.log" &
pids+=($!)
url=
for _ in $(seq 100); do
  url=$(sed -n 's/^bos-emulator: listening on \(http:[^ ]*\)$/\1/p' "$demo/emulator.log")
  [ -n "$url" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || die "bos-emulator exited: $(cat "$demo/emulator.log")"
  sleep 0.1
done
[ -n "$url" ] || die "bos-emulator did not start within 10s; see .demo/emulator.log"
export PLANA_API_URL=$url
echo "API at $url"

step "plana auth login --with-token < .demo/token"
"$bin/plana" auth login --with-token <"$demo/token"

step "Starting the automation with the old key from .demo/automation.env (log: .demo/automation.log)"
"$bin/automation" --env-file "$demo/automation.env" --interval 1s \
  --stats-file "$demo/automation.json" 2>"$demo/automation.log" &
auto=$!
pids+=("$auto")
for _ in $(seq 100); do
  [ -s "$demo/automation.json" ] && break
  kill -0 "$auto" 2>/dev/null || die "the automation exited: $(cat "$demo/automation.log")"
  sleep 0.1
done
[ -s "$demo/automation.json" ] || die "the automation made no call within 10s; see .demo/automation.log"

step "plana keys list"
"$bin/plana" keys list

step "plana keys rotate \"$key\" --to env-file:.demo/automation.env --quiet-period 5s --poll-interval 1s --timeout 2m --yes"
"$bin/plana" keys rotate "$key" --to "env-file:$demo/automation.env" \
  --quiet-period 5s --poll-interval 1s --timeout 2m --yes

step "Stopping the automation"
kill -TERM "$auto"
wait "$auto" || die "the automation did not stop cleanly; see .demo/automation.log"
stat() { sed -n "s/^ *\"$1\": \([0-9]*\),*$/\1/p" "$demo/automation.json"; }
calls=$(stat calls)
failures=$(stat failures)
echo "The automation's own log, one line per change:"
sed 's/^/  /' "$demo/automation.log"
echo
echo "automation: $calls calls, $failures failed"

step "plana keys log"
"$bin/plana" keys log

step "plana keys list"
"$bin/plana" keys list

if [ "$failures" != 0 ]; then
  die "$failures of $calls calls failed during the rotation: that is downtime, and a bug"
fi
step "Done: the key was rotated with $calls calls and none failed."
