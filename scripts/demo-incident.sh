#!/usr/bin/env bash
# make demo-incident: a compromise, found and handled. The example automation
# calls the API with "Nightly stock sync (2025)" from its server; a stranger
# uses a copy of that key from another network; `plana keys audit` flags the
# stranger's calls (exit 6); `plana keys audit --rotate --yes` runs the
# emergency rotation; the stranger's next call is refused, and the
# automation carries on with the new key. The emulator plays both networks
# through X-Forwarded-For (--trust-forwarded-for, loopback only).
# Everything lives under .demo/incident/; nothing secret is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo/incident
bin=$root/.demo/bin
key="Nightly stock sync (2025)"
server=203.0.113.7   # the automation's server, as the seed's month of history knows it
stranger=192.0.2.66  # another network

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi
die() { echo "demo-incident: $*" >&2; exit 1; }

keyring_answers() {
  [ "$(uname -s)" = Darwin ] && return 0
  [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] && command -v dbus-send >/dev/null || return 1
  timeout 5 dbus-send --session --print-reply --dest=org.freedesktop.secrets \
    /org/freedesktop/secrets org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1
}

# As in scripts/demo.sh: never your own keyring. On Linux the demo runs in a
# D-Bus session of its own with a throwaway gnome-keyring under
# .demo/incident/keyring.
if [ "$(uname -s)" != Darwin ] && [ -z "${PLANA_DEMO_IN_SESSION:-}" ]; then
  if ! command -v dbus-run-session >/dev/null || ! command -v gnome-keyring-daemon >/dev/null; then
    echo "demo-incident: the demo runs in a keyring of its own, which needs dbus-run-session and gnome-keyring-daemon:" >&2
    echo "demo-incident:   sudo apt-get install -y gnome-keyring dbus" >&2
    exit 1
  fi
  rm -rf "$demo/keyring"
  mkdir -p "$demo/keyring/data" "$demo/keyring/run"
  chmod 700 "$demo/keyring" "$demo/keyring/run"
  echo "demo-incident: running in a D-Bus session and gnome-keyring of its own (.demo/incident/keyring); your keyring is not touched." >&2
  export PLANA_DEMO_IN_SESSION=1
  exec env XDG_DATA_HOME="$demo/keyring/data" XDG_RUNTIME_DIR="$demo/keyring/run" \
    dbus-run-session -- sh -c 'printf x | gnome-keyring-daemon --unlock --components=secrets >/dev/null; exec bash "$0"' "$0"
fi
keyring_answers || die "the demo's own gnome-keyring does not answer; see the messages above."

step "Building plana, bos-emulator and the example automation into .demo/bin"
mkdir -p "$bin"
go build -o "$bin/" ./cmd/plana ./cmd/bos-emulator ./examples/automation

rm -rf "$demo/bos.db" "$demo/token" "$demo"/*.env "$demo/config" "$demo/state" "$demo/data" "$demo"/*.log "$demo"/*.json
mkdir -p "$demo"
export XDG_CONFIG_HOME=$demo/config XDG_STATE_HOME=$demo/state XDG_DATA_HOME=$demo/data
export PLANA_PROFILE=demo-incident
unset PLANA_TOKEN PLANA_API_URL PLANA_AUDIT_ALLOW PLANA_ROTATION_TARGETS PLANA_NOTIFY

pids=()
cleanup() {
  if [ "$(uname -s)" = Darwin ]; then
    for id in $(grep -rhoE '"id": *"key_[A-Za-z0-9]+"' "$demo/state" 2>/dev/null | sed 's/.*"\(key_[A-Za-z0-9]*\)"/\1/' | sort -u); do
      security delete-generic-password -s plana -a "key:$id" >/dev/null 2>&1 || true
    done
    security delete-generic-password -s plana -a "token:$PLANA_PROFILE" >/dev/null 2>&1 || true
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run CODE CMD...: runs CMD, which must exit CODE.
run() {
  local want=$1 code=0
  shift
  "$@" || code=$?
  [ "$code" = "$want" ] || die "$(basename "$1") exited $code, want $want"
}

step "Starting bos-emulator with the demo workspace and its weeks of history, trusting X-Forwarded-For (log: .demo/incident/emulator.log)"
"$bin/bos-emulator" --listen 127.0.0.1:0 --db "$demo/bos.db" --trust-forwarded-for \
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
[ -n "$url" ] || die "bos-emulator did not start within 10s; see .demo/incident/emulator.log"
export PLANA_API_URL=$url
echo "API at $url"

step "plana auth login --with-token < .demo/incident/token"
"$bin/plana" auth login --with-token <"$demo/token"

step "The key's deploy target, for an emergency: plana config set rotation.targets ..."
"$bin/plana" config set rotation.targets "[{match: \"Nightly stock sync*\", to: [\"env-file:$demo/automation.env\"]}]"
"$bin/plana" config set poll_interval 1s
"$bin/plana" config get rotation.targets

step "Starting the automation on its server ($server) with the key in .demo/incident/automation.env (log: .demo/incident/automation.log)"
"$bin/automation" --env-file "$demo/automation.env" --interval 2s --forwarded-for "$server" \
  --stats-file "$demo/automation.json" 2>"$demo/automation.log" &
auto=$!
pids+=("$auto")
for _ in $(seq 100); do
  [ -s "$demo/automation.json" ] && break
  kill -0 "$auto" 2>/dev/null || die "the automation exited: $(cat "$demo/automation.log")"
  sleep 0.1
done
[ -s "$demo/automation.json" ] || die "the automation made no call within 10s; see .demo/incident/automation.log"

step "plana keys audit --all: every key against its own month of history"
run 0 "$bin/plana" keys audit --all
echo "exit 0: nothing you didn't make"

step "A stranger with a copy of the key, from $stranger: reads stock, then tries the key management API"
cp "$demo/automation.env" "$demo/stolen.env"
for _ in 1 2 3; do
  "$bin/automation" --env-file "$demo/stolen.env" --once --forwarded-for "$stranger" --user-agent python-requests/2.31 2>/dev/null
done
"$bin/automation" --env-file "$demo/stolen.env" --once --forwarded-for "$stranger" --user-agent python-requests/2.31 \
  --path /v1/api-keys 2>/dev/null || echo "(refused with 403: the key lacks keys:manage; the attempt is in the log all the same)"

step "plana keys audit --all"
run 6 "$bin/plana" keys audit --all
echo "exit 6: suspicious calls"

step "plana keys audit --all --rotate --yes: the emergency rotation of the flagged key"
run 6 "$bin/plana" keys audit --all --rotate --yes --timeout 2m

step "The stranger tries again"
if "$bin/automation" --env-file "$demo/stolen.env" --once --forwarded-for "$stranger" --user-agent python-requests/2.31 2>"$demo/stranger.log"; then
  die "the stranger's call with the old key succeeded after the emergency rotation"
fi
grep -q 'HTTP 401' "$demo/stranger.log" || die "the stranger's call failed, but not with 401: $(cat "$demo/stranger.log")"
echo "refused: 401"

step "The automation carries on with the new key"
new=$(sed -n 's/^PLANA_KEY=\(pa_live_[0-9A-Za-z]\{8\}\).*/\1/p' "$demo/automation.env")
stat() { sed -n "s/^ *\"$1\": \"\{0,1\}\([^\",]*\)\"\{0,1\},*$/\1/p" "$demo/automation.json"; }
for _ in $(seq 100); do
  [ "$(stat last_prefix)" = "$new" ] && break
  sleep 0.1
done
[ "$(stat last_prefix)" = "$new" ] || die "the automation did not move to the new key $new; see .demo/incident/automation.log"
kill -TERM "$auto"
wait "$auto" || die "the automation did not stop cleanly; see .demo/incident/automation.log"
echo "The automation's own log, one line per change:"
sed 's/^/  /' "$demo/automation.log"
echo
echo "automation: $(stat calls) calls, $(stat failures) failed (an emergency revokes first: calls between the revoke and the deploy may fail)"

step "plana keys audit --all: the stranger, refused, is still a finding; the new key is too young to judge"
run 6 "$bin/plana" keys audit --all

step "plana keys log"
"$bin/plana" keys log

step "Done: the stranger's calls were flagged, the key rotated in an emergency, the stranger refused, and the automation runs on the new key $new."
